import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRegistry, listFormats, renderOutput } from '../../src/formats/index.ts';
import { CertfleetError } from '../../src/core/errors.ts';
import { makeTestPki, type TestPki } from '../helpers/test-pki.ts';

describe('format registry', () => {
  let pki: TestPki;
  before(async () => {
    pki = await makeTestPki('ecdsa-p256');
  });

  test('knows every format OutputSpec documents, each with a description', () => {
    const names = listFormats().map((f) => f.name);
    assert.deepEqual(
      [...names].sort(),
      ['cert', 'chain', 'combined', 'der', 'fullchain', 'jks', 'key', 'key-rsa', 'pkcs12'].sort(),
    );
    for (const f of listFormats()) assert.ok(f.description.length > 10, f.name);
    assert.equal(formatRegistry.get('pkcs12')?.name, 'pkcs12');
  });

  test('an unknown format is a VALIDATION_FAILED error listing the known ones', async () => {
    await assert.rejects(renderOutput('pfx', pki.bundle, {}), (e: unknown) => {
      assert.ok(e instanceof CertfleetError);
      assert.equal(e.code, 'VALIDATION_FAILED');
      assert.equal(e.message, 'unknown output format "pfx"');
      assert.match(e.hint, /^use one of: .*pkcs12.*jks/);
      return true;
    });
  });

  for (const format of ['pkcs12', 'jks']) {
    test(`${format} without a password names the output and the fix`, async () => {
      await assert.rejects(renderOutput(format, pki.bundle, {}), (e: unknown) => {
        assert.ok(e instanceof CertfleetError);
        assert.match(e.message, new RegExp(`"${format}" needs a password`));
        assert.match(e.hint, /passwordRef/);
        return true;
      });
    });
  }

  test('a broken bundle key is reported without echoing the key', async () => {
    const keyPem = '-----BEGIN PRIVATE KEY-----\nTUlJQ-secret-material\n-----END PRIVATE KEY-----\n';
    await assert.rejects(renderOutput('key', { ...pki.bundle, keyPem }, {}), (e: unknown) => {
      assert.ok(e instanceof CertfleetError);
      assert.match(e.message, /private key cannot be parsed/);
      assert.ok(!JSON.stringify(e.toJSON()).includes('secret-material'));
      assert.equal(e.cause, undefined, 'no cause that could carry key bytes');
      return true;
    });
  });

  test('a broken chain certificate is named by position', async () => {
    const bundle = {
      ...pki.bundle,
      chainPems: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'],
    };
    await assert.rejects(renderOutput('fullchain', bundle, {}), /chain certificate #1 is not valid PEM/);
  });

  test('PEM outputs end with exactly one newline per block even if the input lacks them', async () => {
    const bundle = {
      ...pki.bundle,
      certPem: pki.bundle.certPem.trim(),
      chainPems: pki.bundle.chainPems.map((p) => `${p.trim()}\n\n`),
    };
    const text = (await renderOutput('fullchain', bundle, {})).toString();
    assert.match(text, /-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----/);
    assert.ok(text.endsWith('-----END CERTIFICATE-----\n'));
  });
});
