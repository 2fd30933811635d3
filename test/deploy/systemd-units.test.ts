/**
 * The systemd units in deploy/:
 * - both pass `systemd-analyze verify`. It needs the ExecStart binary to exist, and /usr/bin/certfleet exists only
 *   once the package is installed, so the test verifies copies whose ExecStart runs this checkout's bin/certfleet.js
 *   with this node; nothing else in the units is changed;
 * - their exposure (`systemd-analyze security --offline=true`) stays at what docs/operations.md records;
 * - the agent's documented config test, `sudo -n /usr/sbin/nginx -t`, works inside the agent unit's mount sandbox.
 *   There is no systemd to run the unit here, so the sandbox is emulated in a mount namespace (unshare): every mount
 *   but /proc, /sys and /dev read-only (ProtectSystem=strict), then the unit's own ReadWritePaths= made writable
 *   again. /run, /var/log/nginx and /var/lib/nginx are fresh tmpfs inside the namespace, so nginx -t leaves nothing
 *   behind on this machine. The sudoers rule is the documented one, for `nobody` instead of `certfleet-agent` (no
 *   user is created). Seccomp and capability settings are not emulated; the agent unit sets none that bind sudo.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile, mkdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CLI } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const run = promisify(execFile);
const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');
const UNITS = ['certfleet-hub.service', 'certfleet-agent.service'];

/** Exposure ceilings: the scores measured when the units were written (docs/operations.md), rounded up. */
const MAX_EXPOSURE: Record<string, number> = { 'certfleet-hub.service': 2.0, 'certfleet-agent.service': 5.0 };

/** Copies of the units whose ExecStart runs this checkout, in a temp directory (see the header). */
async function verifiableCopies(t: Parameters<typeof tempDir>[0]): Promise<string[]> {
  const dir = await tempDir(t);
  const paths: string[] = [];
  for (const unit of UNITS) {
    const text = await readFile(join(DEPLOY, unit), 'utf8');
    assert.match(text, /^ExecStart=\/usr\/bin\/certfleet /m, unit);
    const copy = join(dir, unit);
    await writeFile(
      copy,
      text.replace(/^ExecStart=\/usr\/bin\/certfleet /m, `ExecStart=${process.execPath} ${CLI} `),
    );
    paths.push(copy);
  }
  return paths;
}

/** Runs a command and returns its exit code and output, whatever the code. */
async function attempt(file: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(file, args, { timeout: 120_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : 1,
      out: `${err.stdout ?? ''}${err.stderr ?? ''}`,
    };
  }
}

/** The paths of every `ReadWritePaths=` line that is not commented out, without the "-" (ignore if missing) prefix. */
function readWritePaths(unit: string): string[] {
  return unit
    .split('\n')
    .filter((l) => l.startsWith('ReadWritePaths='))
    .flatMap((l) => l.slice('ReadWritePaths='.length).trim().split(/\s+/))
    .map((p) => p.replace(/^-/, ''));
}

/**
 * Runs `argv` as `nobody` under the emulated sandbox (see the header), with `rw` writable and `sudoersDir` as
 * /etc/sudoers.d. `noNewPrivs` sets the flag NoNewPrivileges=true would set.
 */
async function inAgentSandbox(opts: {
  rw: string[];
  sudoersDir: string;
  noNewPrivs?: boolean;
  argv: string[];
}) {
  const script = `
set -e
mount --make-rprivate /
mount --bind "$SUDOERS_DIR" /etc/sudoers.d
for p in /run /var/log/nginx /var/lib/nginx; do [ -d "$p" ] && mount -t tmpfs -o mode=0755 tmpfs "$p"; done
awk '{print $5}' /proc/self/mountinfo | grep -vE '^/(proc|sys|dev)(/|$)' | sort -u | while read -r mp; do
  mount -o remount,bind,ro "$mp"
done
for p in $RW_PATHS; do
  if [ -e "$p" ]; then mount --bind "$p" "$p"; mount -o remount,bind,rw "$p"; fi
done
if touch /etc/.certfleet-sandbox-probe 2>/dev/null; then echo "sandbox is not read-only"; exit 99; fi
exec setpriv --reuid=nobody --regid=nogroup --clear-groups $NNP "$@"
`;
  const env = {
    ...process.env,
    SUDOERS_DIR: opts.sudoersDir,
    RW_PATHS: opts.rw.join(' '),
    NNP: opts.noNewPrivs ? '--no-new-privs' : '',
  };
  try {
    const r = await run('unshare', ['-m', 'sh', '-c', script, 'sandbox', ...opts.argv], {
      env,
      timeout: 120_000,
    });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof err.code === 'number' ? err.code : 1,
      out: `${err.stdout ?? ''}${err.stderr ?? ''}`,
    };
  }
}

describe('systemd units', () => {
  test('both units pass systemd-analyze verify', async (t) => {
    const copies = await verifiableCopies(t);
    const r = await attempt('systemd-analyze', ['verify', ...copies]);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.out.trim(), '', 'no warnings either');
  });

  test('their exposure stays within what docs/operations.md records (hub: OK, at most 2.0)', async (t) => {
    const docs = await readFile(join(DEPLOY, '..', 'docs', 'operations.md'), 'utf8');
    for (const copy of await verifiableCopies(t)) {
      const unit = copy.split('/').pop()!;
      const r = await attempt('systemd-analyze', ['security', '--offline=true', '--no-pager', copy]);
      assert.equal(r.code, 0, r.out);
      const m = /Overall exposure level for \S+: (\d+\.\d) (\w+)/.exec(r.out);
      assert.ok(m, r.out);
      const score = Number(m[1]);
      assert.ok(score <= MAX_EXPOSURE[unit], `${unit}: ${score} ${m[2]} (ceiling ${MAX_EXPOSURE[unit]})`);
      assert.equal(m[2], 'OK', unit);
      assert.ok(
        // table cells may be padded (a formatter aligns the columns)
        new RegExp(
          `\\| \`${unit.replace('.', '\\.')}\`\\s*\\|\\s*${m[1].replace('.', '\\.')} ${m[2]}\\s*\\|`,
        ).test(docs),
        `docs/operations.md records ${unit}: ${m[1]} ${m[2]}`,
      );
    }
  });

  test("the agent's `sudo -n nginx -t` works in the agent unit's sandbox; without its paths or with NoNewPrivileges it does not", async (t) => {
    const unit = await readFile(join(DEPLOY, 'certfleet-agent.service'), 'utf8');
    assert.match(unit, /^NoNewPrivileges=false$/m);
    const rw = readWritePaths(unit);
    assert.ok(
      rw.includes('/run') && rw.includes('/var/log/nginx') && rw.includes('/var/lib/nginx'),
      rw.join(' '),
    );

    // The rule docs/agent.md documents, for `nobody`; sudo wants its drop-ins root-owned and not writable by others.
    const docs = await readFile(join(DEPLOY, '..', 'docs', 'agent.md'), 'utf8');
    assert.match(
      docs,
      /certfleet-agent ALL=\(root\) NOPASSWD: \/usr\/sbin\/nginx -t, \/usr\/sbin\/nginx -s reload/,
    );
    const sudoersDir = join(await tempDir(t), 'sudoers.d');
    await mkdir(sudoersDir, { mode: 0o755 });
    const rule = join(sudoersDir, 'certfleet-agent');
    await writeFile(rule, 'nobody ALL=(root) NOPASSWD: /usr/sbin/nginx -t, /usr/sbin/nginx -s reload\n');
    await chmod(rule, 0o440);
    const nginxTest = ['sudo', '-n', '/usr/sbin/nginx', '-t'];

    const ok = await inAgentSandbox({ rw, sudoersDir, argv: nginxTest });
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /configuration file \/etc\/nginx\/nginx\.conf test is successful/);

    // Controls: the sandbox is real (without the nginx paths, nginx -t cannot write), and sudo is what needs
    // NoNewPrivileges=false.
    const withoutNginxPaths = await inAgentSandbox({
      rw: rw.filter((p) => !['/run', '/var/log/nginx', '/var/lib/nginx'].includes(p)),
      sudoersDir,
      argv: nginxTest,
    });
    assert.notEqual(withoutNginxPaths.code, 0, withoutNginxPaths.out);
    assert.match(withoutNginxPaths.out, /Read-only file system/);

    const noNewPrivs = await inAgentSandbox({ rw, sudoersDir, noNewPrivs: true, argv: nginxTest });
    assert.notEqual(noNewPrivs.code, 0, noNewPrivs.out);
    assert.match(noNewPrivs.out, /no new privileges/);
  });
});
