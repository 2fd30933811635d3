import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('certfleet rehearse (the real binary)', () => {
  test('30 days of 10 endpoints with 6-day certificates: exit 0 and a JSON report that parses', async () => {
    const r = await runCli(['rehearse', '--days', '30', '--endpoints', '10', '--lifetime', '6d', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.servedExpired.endpointMinutes, 0);
    assert.equal(report.options.endpoints, 10);
    assert.ok(report.issuances.renewals >= 90, `renewals: ${report.issuances.renewals}`);
    assert.equal(report.daily.issued.length, 30);
  });

  test('--html writes one self-contained page with an SVG chart', async (t) => {
    const file = join(await tempDir(t), 'rehearsal.html');
    const r = await runCli([
      'rehearse',
      '--days',
      '3',
      '--endpoints',
      '2',
      '--lifetime',
      '2d',
      '--html',
      file,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Served expired: 0 endpoint-minutes/);
    const html = await readFile(file, 'utf8');
    assert.match(html, /<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(html, /<polyline /);
    assert.doesNotMatch(html, /<script|<link|src="http/, 'no external assets');
  });

  test('a lifetime of 0 days is a usage error (exit 2) that says what a lifetime looks like', async () => {
    const r = await runCli(['rehearse', '--lifetime', '0d']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--lifetime "0d" is not a lifetime/);
    assert.match(r.stderr, /hint: .*47d/);
  });

  test('--faults all names every fault kind', async () => {
    const r = await runCli(['rehearse', '--days', '1', '--endpoints', '2', '--faults', 'all']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /faults: ca-down, rate-limit, dns, reload-fails, agent-offline, hub-restart,/);
  });

  test('an unknown fault is a usage error (exit 2) that lists the faults there are', async () => {
    const r = await runCli(['rehearse', '--faults', 'ca-down,meteor']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown fault "meteor"/);
    assert.match(r.stderr, /ca-down, rate-limit, dns, reload-fails, agent-offline, hub-restart/);
  });
});
