import { createCipheriv, createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import { AlgorithmIdentifier, PBES2Params, PBKDF2Params } from 'pkijs';

/**
 * The password-based primitives PKCS#12 needs, over node:crypto. pkijs models the ASN.1, but it only encrypts
 * with PBES2, and the legacy profile needs the RFC 7292 KDF with 3DES, so both profiles go through here.
 */

export const OID = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSha256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  pbeWithSha1And3DesCbc: '1.2.840.113549.1.12.1.3',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

export interface Encrypted {
  algorithm: AlgorithmIdentifier;
  ciphertext: Buffer;
}

/** RFC 7292 appendix B.2: the PKCS#12 KDF (id 1 = key, 2 = IV, 3 = MAC key); password as BMPString + NUL. */
export function pkcs12Kdf(
  hash: 'sha1' | 'sha256',
  password: string,
  salt: Buffer,
  id: 1 | 2 | 3,
  iterations: number,
  size: number,
): Buffer {
  const u = hash === 'sha1' ? 20 : 32;
  const v = 64;
  const pw = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) pw.writeUInt16BE(password.charCodeAt(i), i * 2);
  const stretch = (b: Buffer, len: number) => {
    const out = Buffer.alloc(len);
    for (let i = 0; i < len; i++) out[i] = b[i % b.length];
    return out;
  };
  const I = Buffer.concat([
    stretch(salt, v * Math.ceil(salt.length / v)),
    stretch(pw, v * Math.ceil(pw.length / v)),
  ]);
  const D = Buffer.alloc(v, id);
  const out: Buffer[] = [];
  for (let produced = 0; produced < size; produced += u) {
    let A = createHash(hash).update(D).update(I).digest();
    for (let j = 1; j < iterations; j++) A = createHash(hash).update(A).digest();
    out.push(A);
    const B = stretch(A, v);
    // I_j = (I_j + B + 1) mod 2^(8v) for every v-byte block of I.
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        carry += I[j + k] + B[k];
        I[j + k] = carry & 0xff;
        carry >>= 8;
      }
    }
  }
  return Buffer.concat(out).subarray(0, size);
}

/** PBES2 (RFC 8018): PBKDF2-HMAC-SHA-256 over the UTF-8 password, AES-256-CBC. What OpenSSL 3 writes by default. */
export function encryptPbes2(plain: Buffer, password: string, iterations: number): Encrypted {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const c = createCipheriv('aes-256-cbc', key, iv);
  const ciphertext = Buffer.concat([c.update(plain), c.final()]);
  const kdfParams = new PBKDF2Params({
    salt: new asn1js.OctetString({ valueHex: salt }),
    iterationCount: iterations,
    prf: new AlgorithmIdentifier({ algorithmId: OID.hmacWithSha256, algorithmParams: new asn1js.Null() }),
  });
  const params = new PBES2Params({
    keyDerivationFunc: new AlgorithmIdentifier({
      algorithmId: OID.pbkdf2,
      algorithmParams: kdfParams.toSchema(),
    }),
    encryptionScheme: new AlgorithmIdentifier({
      algorithmId: OID.aes256Cbc,
      algorithmParams: new asn1js.OctetString({ valueHex: iv }),
    }),
  });
  return {
    algorithm: new AlgorithmIdentifier({ algorithmId: OID.pbes2, algorithmParams: params.toSchema() }),
    ciphertext,
  };
}

/** pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 appendix C): readable by everything since Windows XP and Java 1.4. */
export function encryptPbeSha1TripleDes(plain: Buffer, password: string, iterations: number): Encrypted {
  const salt = randomBytes(8);
  const key = pkcs12Kdf('sha1', password, salt, 1, iterations, 24);
  const iv = pkcs12Kdf('sha1', password, salt, 2, iterations, 8);
  const c = createCipheriv('des-ede3-cbc', key, iv);
  const ciphertext = Buffer.concat([c.update(plain), c.final()]);
  const params = new asn1js.Sequence({
    value: [new asn1js.OctetString({ valueHex: salt }), new asn1js.Integer({ value: iterations })],
  });
  return {
    algorithm: new AlgorithmIdentifier({ algorithmId: OID.pbeWithSha1And3DesCbc, algorithmParams: params }),
    ciphertext,
  };
}

/** The PFX MacData HMAC: key from the PKCS#12 KDF (id 3), as OpenSSL and Java compute and check it. */
export function pkcs12Mac(
  hash: 'sha1' | 'sha256',
  password: string,
  salt: Buffer,
  iterations: number,
  data: Buffer,
): Buffer {
  const key = pkcs12Kdf(hash, password, salt, 3, iterations, hash === 'sha1' ? 20 : 32);
  return createHmac(hash, key).update(data).digest();
}
