/**
 * The error catalogue (src/core/errors.ts) is the one list of codes: every code the source throws, answers or prints
 * is in it, each entry has an HTTP status, templated entries are only built through errorOf, and "not found" for a
 * certificate or endpoint is worded in one place.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import {
  ERROR_CATALOGUE,
  ERROR_STATUS,
  certificateNotFound,
  endpointNotFound,
  errorOf,
} from '../../src/core/errors.ts';

const SRC = join(import.meta.dirname, '..', '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Every place a code is given as a literal: thrown, built from the catalogue, answered or printed as JSON. */
const CODE_USES = [
  /new CertfleetError\(\s*'([A-Z_]+)'/g,
  /errorOf\(\s*'([A-Z_]+)'/g,
  /printJsonError\(\s*'([A-Z_]+)'/g,
  // API and result bodies: `code: 'X'` (Node's own errno codes such as ETIMEDOUT start with E + letter and are
  // internal; the CLI and API never show them as codes).
  /\bcode: '([A-Z][A-Z_]+)'/g,
];
const NODE_ERRNO = /^E[A-Z]+$|^ABORT_ERR$/;

describe('error catalogue', () => {
  test('every code used in src/ is in the catalogue', () => {
    const unknown: string[] = [];
    let uses = 0;
    for (const file of sources(SRC)) {
      const text = readFileSync(file, 'utf8');
      for (const re of CODE_USES) {
        for (const m of text.matchAll(re)) {
          if (NODE_ERRNO.test(m[1])) continue;
          uses++;
          if (!(m[1] in ERROR_CATALOGUE)) unknown.push(`${relative(SRC, file)}: ${m[1]}`);
        }
      }
    }
    assert.deepEqual(unknown, []);
    assert.ok(uses > 100, `only ${uses} uses found: is the scan still matching?`);
  });

  test('each entry has a 4xx or 5xx status; templated entries have a hint', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOGUE)) {
      assert.match(String(entry.status), /^[45]\d\d$/, code);
      assert.equal(ERROR_STATUS[code as keyof typeof ERROR_STATUS], entry.status);
      if ('message' in entry) assert.ok('hint' in entry && entry.hint, `${code} has a template but no hint`);
    }
  });

  test('errorOf fills the message first, then the hint', () => {
    const e = errorOf('PAYLOAD_TOO_LARGE', '1024');
    assert.equal(e.message, 'request body is too large');
    assert.equal(e.hint, 'send at most 1024 KiB per request');
    assert.equal(e.status, 413);
    assert.equal(certificateNotFound('web').message, 'certificate "web" not found');
    assert.equal(certificateNotFound('web').status, 404);
    assert.equal(endpointNotFound('web1').code, 'ENDPOINT_NOT_FOUND');
  });

  test('"certificate … not found" and "endpoint … not found" are worded only in the catalogue', () => {
    const elsewhere: string[] = [];
    for (const file of sources(SRC)) {
      if (file.endsWith(join('core', 'errors.ts'))) continue;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/`(certificate|endpoint) "\$\{[^`]*\}" not found`/g))
        elsewhere.push(`${relative(SRC, file)}: ${m[0]}`);
      for (const m of text.matchAll(/'(CERTIFICATE|ENDPOINT)_NOT_FOUND',\s*`[^`]*not found`/g))
        elsewhere.push(`${relative(SRC, file)}: ${m[0]}`);
    }
    assert.deepEqual(elsewhere, []);
  });
});
