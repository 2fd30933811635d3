import { createHash, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import {
  AlgorithmIdentifier,
  Attribute,
  AuthenticatedSafe,
  CertBag,
  ContentInfo,
  DigestInfo,
  EncryptedContentInfo,
  EncryptedData,
  MacData,
  PFX,
  PKCS8ShroudedKeyBag,
  SafeBag,
  SafeContents,
} from 'pkijs';
import { DEFAULT_ALIAS, type OutputFormat } from './output-format.ts';
import { bundleKey, chainDer, requirePassword } from './pem-util.ts';
import { OID, encryptPbeSha1TripleDes, encryptPbes2, pkcs12Mac, type Encrypted } from './pkcs12-crypto.ts';

const BAG = { shroudedKey: '1.2.840.113549.1.12.10.1.2', cert: '1.2.840.113549.1.12.10.1.3' } as const;
const ATTR = { friendlyName: '1.2.840.113549.1.9.20', localKeyId: '1.2.840.113549.1.9.21' } as const;
const X509_CERT_TYPE = '1.2.840.113549.1.9.22.1';
const DATA = '1.2.840.113549.1.7.1';
const ENCRYPTED_DATA = '1.2.840.113549.1.7.6';

interface Profile {
  encrypt(plain: Buffer, password: string): Encrypted;
  mac: 'sha1' | 'sha256';
  macIterations: number;
}

// Modern: what `openssl pkcs12 -export` (3.x) and Java 17's keytool write. Legacy: 3DES for key AND certs
// (not RC2-40, which OpenSSL 3 reads only with -legacy), SHA-1 MAC: Windows Server 2016, Java 8 before u301.
const MODERN: Profile = {
  encrypt: (p, pw) => encryptPbes2(p, pw, 10_000),
  mac: 'sha256',
  macIterations: 10_000,
};
const LEGACY: Profile = {
  encrypt: (p, pw) => encryptPbeSha1TripleDes(p, pw, 2048),
  mac: 'sha1',
  macIterations: 2048,
};

function encryptedSafe(safe: SafeContents, profile: Profile, password: string): ContentInfo {
  const { algorithm, ciphertext } = profile.encrypt(Buffer.from(safe.toSchema().toBER(false)), password);
  const data = new EncryptedData({
    version: 0,
    encryptedContentInfo: new EncryptedContentInfo({
      contentType: DATA,
      contentEncryptionAlgorithm: algorithm,
      encryptedContent: new asn1js.OctetString({ valueHex: ciphertext }),
      disableSplit: true,
    }),
  });
  return new ContentInfo({ contentType: ENCRYPTED_DATA, content: data.toSchema() });
}

function plainSafe(safe: SafeContents): ContentInfo {
  return new ContentInfo({
    contentType: DATA,
    content: new asn1js.OctetString({ valueHex: safe.toSchema().toBER(false) }),
  });
}

export async function renderPkcs12(
  der: Buffer[],
  pkcs8Der: Buffer,
  password: string,
  alias: string,
  profile: Profile,
): Promise<Buffer> {
  // localKeyId pairs the key with its certificate; OpenSSL uses the leaf's SHA-1 and so do we.
  const localKeyId = createHash('sha1').update(der[0]).digest();
  const leafAttrs = () => [
    new Attribute({ type: ATTR.friendlyName, values: [new asn1js.BmpString({ value: alias })] }),
    new Attribute({ type: ATTR.localKeyId, values: [new asn1js.OctetString({ valueHex: localKeyId })] }),
  ];
  const certBags = der.map(
    (d, i) =>
      new SafeBag({
        bagId: BAG.cert,
        bagValue: new CertBag({
          certId: X509_CERT_TYPE,
          // Raw bytes, not pkijs' parsed form: re-encoding a certificate could change what its signature covers.
          certValue: new asn1js.OctetString({ valueHex: d }),
        }),
        // Intermediates carry no attributes: keytool would otherwise list them as separate trusted entries.
        ...(i === 0 ? { bagAttributes: leafAttrs() } : {}),
      }),
  );
  const shrouded = profile.encrypt(pkcs8Der, password);
  const keyBag = new SafeBag({
    bagId: BAG.shroudedKey,
    bagValue: new PKCS8ShroudedKeyBag({
      encryptionAlgorithm: shrouded.algorithm,
      encryptedData: new asn1js.OctetString({ valueHex: shrouded.ciphertext }),
    }),
    bagAttributes: leafAttrs(),
  });
  // Same layout as OpenSSL: certificates in an encrypted safe, the (already shrouded) key in a plain one.
  const authSafe = new AuthenticatedSafe({
    safeContents: [
      encryptedSafe(new SafeContents({ safeBags: certBags }), profile, password),
      plainSafe(new SafeContents({ safeBags: [keyBag] })),
    ],
  });
  const authSafeDer = Buffer.from(authSafe.toSchema().toBER(false));
  const macSalt = randomBytes(16);
  const mac = pkcs12Mac(profile.mac, password, macSalt, profile.macIterations, authSafeDer);
  const pfx = new PFX({
    version: 3,
    authSafe: new ContentInfo({
      contentType: DATA,
      content: new asn1js.OctetString({ valueHex: authSafeDer }),
    }),
    macData: new MacData({
      mac: new DigestInfo({
        digestAlgorithm: new AlgorithmIdentifier({
          algorithmId: profile.mac === 'sha1' ? OID.sha1 : OID.sha256,
          algorithmParams: new asn1js.Null(),
        }),
        digest: new asn1js.OctetString({ valueHex: mac }),
      }),
      macSalt: new asn1js.OctetString({ valueHex: macSalt }),
      iterations: profile.macIterations,
    }),
  });
  return Buffer.from(pfx.toSchema().toBER(false));
}

export const pkcs12Format: OutputFormat = {
  name: 'pkcs12',
  description:
    'PKCS#12 / PFX with key, leaf and intermediates (Windows, Java, Tomcat); AES-256 + SHA-256 MAC, or 3DES + SHA-1 with legacy: true',
  async render(bundle, opts) {
    const password = requirePassword('pkcs12', opts.password);
    const pkcs8 = bundleKey(bundle).export({ type: 'pkcs8', format: 'der' });
    return renderPkcs12(
      chainDer(bundle),
      pkcs8,
      password,
      opts.alias ?? DEFAULT_ALIAS,
      opts.legacy ? LEGACY : MODERN,
    );
  },
};
