// Installs what certfleet needs before `npm start` / `npm test`, so both work on a fresh machine:
// npm packages from package-lock.json (when missing or out of date), and with --test the Debian packages the
// integration tests drive for real (pebble, nginx, haproxy, certbot, bind, openssl, keytool, sshd, postgresql,
// age, promtool); with --bench also the benchmarks' peers (lego, rsync).
// Uses only Node built-ins: it runs before node_modules exists.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const DEBIAN_PACKAGES = {
  // package: a file it installs, to tell whether it is there
  pebble: '/usr/bin/pebble',
  nginx: '/usr/sbin/nginx',
  haproxy: '/usr/sbin/haproxy',
  certbot: '/usr/bin/certbot',
  bind9: '/usr/sbin/named',
  'bind9-dnsutils': '/usr/bin/nsupdate',
  openssl: '/usr/bin/openssl',
  'openjdk-17-jre-headless': '/usr/bin/keytool',
  procps: '/usr/bin/pkill',
  // the SSH connector tests run a private sshd
  'openssh-server': '/usr/sbin/sshd',
  // the dashboard's browser tests (playwright-core drives it; no downloaded browser build)
  chromium: '/usr/bin/chromium',
  // deploy/*.service: `systemd-analyze verify` and `security --offline` (test/deploy-units), and the agent unit's
  // sudo config test run under the unit's sandbox
  systemd: '/usr/bin/systemd-analyze',
  sudo: '/usr/bin/sudo',
  // the PostgreSQL store's tests start a private cluster (test/helpers/postgres.ts finds any version's binaries)
  postgresql: '/usr/lib/postgresql/15/bin/initdb',
  // the standard age CLI, to prove backups open without certfleet
  age: '/usr/bin/age',
  // promtool: checks the /metrics scrape and unit-tests deploy/prometheus rules
  prometheus: '/usr/bin/promtool',
};

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`certfleet setup: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

/** What each package's install script does, said before it runs (some take minutes). */
const INSTALL_SCRIPT_NOTES = {
  'better-sqlite3':
    'building the native SQLite driver (a prebuilt binary if one downloads, else from source: ~90 s on 2 cores)',
  esbuild: "checking esbuild's platform binary",
};

/**
 * `npm ci` in two visible phases: download and unpack every package (npm reports what it added), then run the
 * install scripts one package at a time with their output shown, so a minutes-long native build is never silent.
 */
function ensureNpmPackages() {
  const lockText = readFileSync('package-lock.json');
  const hash = createHash('sha256').update(lockText).digest('hex');
  const marker = 'node_modules/.certfleet-lock-sha256';
  if (existsSync(marker) && readFileSync(marker, 'utf8') === hash) return;
  const lock = JSON.parse(lockText);
  const withScripts = Object.entries(lock.packages)
    .filter(([path, p]) => p.hasInstallScript && path.startsWith('node_modules/'))
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
  console.error('certfleet setup: installing npm packages from package-lock.json (npm ci) ...');
  run('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund']);
  withScripts.forEach((name, i) => {
    const note = INSTALL_SCRIPT_NOTES[name] ?? 'running its install script';
    console.error(`certfleet setup: [${i + 1}/${withScripts.length}] ${name}: ${note} ...`);
    run('npm', ['rebuild', name, '--foreground-scripts', '--no-audit', '--no-fund']);
  });
  console.error('certfleet setup: npm packages ready');
  writeFileSync(marker, hash);
}

// Peers the benchmarks compare against (rsync: the certbot guide's push loop in bench/push.ts).
const BENCH_PACKAGES = { lego: '/usr/bin/lego', rsync: '/usr/bin/rsync' };

function ensureDebianPackages(wanted) {
  const missing = Object.entries(wanted)
    .filter(([, path]) => !existsSync(path))
    .map(([pkg]) => pkg);
  if (missing.length === 0) return;
  const isRoot = process.getuid?.() === 0;
  const sudo = isRoot ? [] : ['sudo', '-n'];
  if (!isRoot && spawnSync('sudo', ['-n', 'true']).status !== 0) {
    console.error(`certfleet setup: the tests need these Debian packages: ${missing.join(' ')}`);
    console.error(
      'hint: run as root, or install them with `sudo apt-get install -y ' + missing.join(' ') + '`',
    );
    process.exit(1);
  }
  console.error(`certfleet setup: installing Debian packages: ${missing.join(' ')} ...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const [cmd, ...pre] = [...sudo, 'apt-get'];
  run(cmd, [...pre, 'update', '-qq'], { env });
  run(cmd, [...pre, 'install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
}

if (process.argv.includes('--test')) {
  ensureDebianPackages(
    process.argv.includes('--bench') ? { ...DEBIAN_PACKAGES, ...BENCH_PACKAGES } : DEBIAN_PACKAGES,
  );
}
ensureNpmPackages();
