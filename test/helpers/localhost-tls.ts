import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface LocalhostTls {
  /** Trust this to accept the server certificate. */
  caPem: string;
  certPem: string;
  keyPem: string;
  certPath: string;
  keyPath: string;
}

/** A throwaway CA and a localhost/127.0.0.1 server certificate it signs, made with openssl. */
export async function makeLocalhostTls(dir: string): Promise<LocalhostTls> {
  const p = (f: string) => join(dir, f);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=certfleet test CA',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
  ]);
  await run('openssl', [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    p('tls.key'),
    '-out',
    p('tls.csr'),
  ]);
  await writeFile(p('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    p('tls.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    p('ext.cnf'),
    '-out',
    p('tls.pem'),
  ]);
  return {
    caPem: await readFile(p('ca.pem'), 'utf8'),
    certPem: await readFile(p('tls.pem'), 'utf8'),
    keyPem: await readFile(p('tls.key'), 'utf8'),
    certPath: p('tls.pem'),
    keyPath: p('tls.key'),
  };
}
