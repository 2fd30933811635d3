/**
 * Certificates made by the `openssl` CLI, for the chain-judgement cases: any key (RSA of any size, any named
 * curve), any digest (SHA-1 included), any extensions, any dates (`openssl ca -startdate/-enddate`). Made by a
 * tool other than ours on purpose, so the tests do not judge certificates with the code that built them.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface OpensslCert {
  name: string;
  certPem: string;
  keyPem: string;
  certPath: string;
  keyPath: string;
}

/** "ec:P-256" (any OpenSSL curve name: prime192v1, secp256k1, ...) or "rsa:2048". */
export type KeySpec = `ec:${string}` | `rsa:${number}`;

export interface CertSpec {
  /** File name stem, and the CN unless `cn` is given. */
  name: string;
  cn?: string;
  key?: KeySpec;
  /** Signed by this CA; self-signed when absent. */
  issuer?: OpensslCert;
  /** Extension lines for the v3 section, e.g. ['basicConstraints=critical,CA:TRUE']. */
  ext: string[];
  md?: 'sha256' | 'sha384' | 'sha1';
  notBefore?: Date;
  notAfter?: Date;
}

const DAY = 86_400_000;

/** OpenSSL's GeneralizedTime form for `openssl ca -startdate/-enddate`. */
function asn1Time(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

async function genKey(path: string, spec: KeySpec): Promise<void> {
  const [alg, param] = spec.split(':');
  const opts =
    alg === 'rsa'
      ? ['-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${param}`]
      : [
          '-algorithm',
          'EC',
          '-pkeyopt',
          `ec_paramgen_curve:${param}`,
          '-pkeyopt',
          'ec_param_enc:named_curve',
        ];
  await run('openssl', ['genpkey', ...opts, '-out', path]);
}

/** A CA workspace under `dir`; every certificate, the roots included, is signed by `openssl ca`. */
export async function opensslPki(dir: string) {
  await mkdir(join(dir, 'newcerts'), { recursive: true });
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), `${randomBytes(8).toString('hex').replace(/^./, '1')}\n`);
  const config = join(dir, 'ca.cnf');
  await writeFile(
    config,
    [
      '[ca]',
      'default_ca = ca_default',
      '[ca_default]',
      `database = ${join(dir, 'index.txt')}`,
      `new_certs_dir = ${join(dir, 'newcerts')}`,
      `serial = ${join(dir, 'serial')}`,
      'policy = policy_any',
      'unique_subject = no',
      'email_in_dn = no',
      'copy_extensions = none',
      '[policy_any]',
      'commonName = supplied',
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      'CN = unused',
      '',
    ].join('\n'),
  );

  async function make(spec: CertSpec): Promise<OpensslCert> {
    const keyPath = join(dir, `${spec.name}.key`);
    const certPath = join(dir, `${spec.name}.pem`);
    const csrPath = join(dir, `${spec.name}.csr`);
    const extPath = join(dir, `${spec.name}.ext`);
    await genKey(keyPath, spec.key ?? 'ec:P-256');
    await writeFile(extPath, `[v3]\n${spec.ext.join('\n')}\n`);
    await run('openssl', [
      'req',
      '-new',
      '-config',
      config,
      '-key',
      keyPath,
      '-subj',
      `/CN=${spec.cn ?? spec.name}`,
      '-out',
      csrPath,
    ]);
    const now = Date.now();
    await run('openssl', [
      'ca',
      '-batch',
      '-config',
      config,
      '-notext',
      '-in',
      csrPath,
      '-out',
      certPath,
      '-md',
      spec.md ?? 'sha256',
      '-startdate',
      asn1Time(spec.notBefore ?? new Date(now - DAY)),
      '-enddate',
      asn1Time(spec.notAfter ?? new Date(now + 90 * DAY)),
      '-extfile',
      extPath,
      '-extensions',
      'v3',
      ...(spec.issuer
        ? ['-cert', spec.issuer.certPath, '-keyfile', spec.issuer.keyPath]
        : ['-selfsign', '-keyfile', keyPath]),
    ]);
    return {
      name: spec.name,
      certPath,
      keyPath,
      certPem: await readFile(certPath, 'utf8'),
      keyPem: await readFile(keyPath, 'utf8'),
    };
  }

  return {
    make,
    /** A root CA (CA:TRUE, keyCertSign). */
    root: (name: string, more: Partial<CertSpec> = {}) =>
      make({
        name,
        ext: [
          'basicConstraints=critical,CA:TRUE',
          'keyUsage=critical,keyCertSign,cRLSign',
          'subjectKeyIdentifier=hash',
        ],
        ...more,
      }),
    /** An intermediate CA under `issuer`; `ext` replaces the default CA extensions. */
    intermediate: (name: string, issuer: OpensslCert, more: Partial<CertSpec> = {}) =>
      make({
        name,
        issuer,
        ext: [
          'basicConstraints=critical,CA:TRUE',
          'keyUsage=critical,keyCertSign,cRLSign',
          'subjectKeyIdentifier=hash',
          'authorityKeyIdentifier=keyid',
        ],
        ...more,
      }),
    /** A TLS server leaf for `dns` under `issuer`; `ext` replaces the default leaf extensions. */
    leaf: (name: string, issuer: OpensslCert, dns: string[], more: Partial<CertSpec> = {}) =>
      make({
        name,
        issuer,
        ext: [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          'extendedKeyUsage=serverAuth',
          'authorityKeyIdentifier=keyid',
          ...(dns.length ? [`subjectAltName=${dns.map((d) => `DNS:${d}`).join(',')}`] : []),
        ],
        ...more,
      }),
  };
}

export type OpensslPki = Awaited<ReturnType<typeof opensslPki>>;
