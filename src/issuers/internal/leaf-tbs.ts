/**
 * The internal CA's leaf certificate, built as @peculiar/asn1-x509 structures and signed with node's crypto: the
 * same DER as @peculiar/x509's X509CertificateGenerator wrote for the same fields (pinned byte for byte by
 * test/issuers/leaf-tbs.test.ts), without its WebCrypto round trip and the re-parse of its own result (~2-3 ms
 * per leaf, the largest cost of an issuance). The to-be-signed part is serialised once: the bytes signed are the
 * bytes placed in the Certificate.
 */
import { AsnConvert, AsnSerializer, OctetString } from '@peculiar/asn1-schema';
import * as asn1js from 'asn1js';
import {
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  AlgorithmIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  id_kp_serverAuth,
} from '@peculiar/asn1-x509';
import { createHash, sign, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { CertfleetError } from '../../core/errors.ts';
import { ipv6Groups } from '../../core/names.ts';
import { x509 } from '../../pki/x509.ts';

/** The signature algorithm by the issuer key's curve: ecdsa-with-SHA256 for P-256, -SHA384 for P-384 (RFC 5758 §3.2). */
const ECDSA_BY_CURVE: Record<string, { oid: string; hash: string }> = {
  prime256v1: { oid: '1.2.840.10045.4.3.2', hash: 'sha256' },
  secp384r1: { oid: '1.2.840.10045.4.3.3', hash: 'sha384' },
};
const ID_AT_COMMON_NAME = '2.5.4.3';

export interface LeafIssuer {
  /** The issuer's subject Name (parsed once from its certificate). */
  subject: Name;
  /** The authorityKeyIdentifier extension every leaf carries (parsed once). */
  aki: Extension;
  /** The issuer's ECDSA P-256 or P-384 private key. */
  key: KeyObject;
  /** The signature algorithm that key signs with, and its digest for node's crypto. */
  signatureAlgorithm: AlgorithmIdentifier;
  hash: string;
  /** Extensions that are the same in every leaf of this issuer (by their flags), made on first use. */
  fixed: Map<string, Extension>;
  /** The signatureAlgorithm's DER, the same in every leaf. */
  signatureAlgorithmDer: ArrayBuffer;
}

/** What every leaf needs from the issuer, read once: its certificate's subject and its AKI extension's DER. */
export function leafIssuer(certDer: BufferSource, akiExtensionDer: BufferSource, key: KeyObject): LeafIssuer {
  const ecdsa = ECDSA_BY_CURVE[key.asymmetricKeyDetails?.namedCurve ?? ''];
  if (!ecdsa)
    throw new CertfleetError(
      'UNKNOWN_KEY_TYPE',
      "the internal CA's intermediate key is neither ECDSA P-256 nor P-384",
      'restore the hub store from a backup: the internal CA only ever makes P-256 or P-384 keys',
    );
  const signatureAlgorithm = new AlgorithmIdentifier({ algorithm: ecdsa.oid });
  return {
    subject: AsnConvert.parse(certDer, Certificate).tbsCertificate.subject,
    aki: AsnConvert.parse(akiExtensionDer, Extension),
    key,
    signatureAlgorithm,
    hash: ecdsa.hash,
    fixed: new Map(),
    signatureAlgorithmDer: AsnConvert.serialize(signatureAlgorithm),
  };
}

export interface LeafFields {
  serialHex: string;
  commonName: string;
  sans: string[];
  notBefore: Date;
  notAfter: Date;
  spkiDer: Buffer;
  /** digitalSignature, plus keyEncipherment for RSA keys. */
  keyEncipherment: boolean;
  usage: { serverAuth?: boolean; clientAuth?: boolean };
}

/** A positive INTEGER's content octets: no leading zero bytes beyond the one a set top bit needs. */
function serialOctets(hex: string): ArrayBuffer {
  const b = Buffer.from(hex, 'hex');
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  return new Uint8Array(v[0] & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v).buffer;
}

const extension = (extnID: string, critical: boolean, value: object) =>
  new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });

/** An extension equal in every leaf with the same flags: made once per issuer and key. */
function fixedExtension(issuer: LeafIssuer, key: string, make: () => Extension): Extension {
  let e = issuer.fixed.get(key);
  if (!e) issuer.fixed.set(key, (e = make()));
  return e;
}

/**
 * A SAN's GeneralName. IPv6 goes to the library fully expanded from ipv6Groups: its own parser reads the IPv4 tail
 * of a mapped address (::ffff:192.0.2.1) as hex groups and encoded ::ffff:0192.
 */
function generalName(n: string): GeneralName {
  const kind = isIP(n);
  if (kind === 0) return new GeneralName({ dNSName: n });
  const iPAddress =
    kind === 4
      ? n
      : ipv6Groups(n)
          .map((g) => g.toString(16))
          .join(':');
  return new GeneralName({ iPAddress });
}

function tbsCertificate(f: LeafFields, issuer: LeafIssuer): TBSCertificate {
  const spki = AsnConvert.parse(f.spkiDer, SubjectPublicKeyInfo);
  // RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits.
  const ski = createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest();
  const cn = x509.Name.isPrintableString(f.commonName)
    ? { printableString: f.commonName }
    : { utf8String: f.commonName };
  const keyUsage = KeyUsageFlags.digitalSignature | (f.keyEncipherment ? KeyUsageFlags.keyEncipherment : 0);
  return new TBSCertificate({
    version: Version.v3,
    serialNumber: serialOctets(f.serialHex),
    signature: issuer.signatureAlgorithm,
    issuer: issuer.subject,
    validity: new Validity({ notBefore: f.notBefore, notAfter: f.notAfter }),
    subject: new Name([
      new RelativeDistinguishedName([
        new AttributeTypeAndValue({ type: ID_AT_COMMON_NAME, value: new AttributeValue(cn) }),
      ]),
    ]),
    subjectPublicKeyInfo: spki,
    extensions: new Extensions([
      fixedExtension(issuer, 'bc', () => extension(id_ce_basicConstraints, true, new BasicConstraints())),
      fixedExtension(issuer, `ku:${keyUsage}`, () => extension(id_ce_keyUsage, true, new KeyUsage(keyUsage))),
      fixedExtension(issuer, `eku:${!!f.usage.serverAuth}:${!!f.usage.clientAuth}`, () =>
        extension(
          id_ce_extKeyUsage,
          false,
          new ExtendedKeyUsage([
            ...(f.usage.serverAuth ? [id_kp_serverAuth] : []),
            ...(f.usage.clientAuth ? [id_kp_clientAuth] : []),
          ]),
        ),
      ),
      extension(id_ce_subjectAltName, false, new SubjectAlternativeName(f.sans.map(generalName))),
      extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(ski)),
      issuer.aki,
    ]),
  });
}

/** The to-be-signed part, as DER. */
export const leafTbs = (f: LeafFields, issuer: LeafIssuer) =>
  Buffer.from(AsnSerializer.serialize(tbsCertificate(f, issuer)));

/**
 * An element already in DER inside an asn1js structure, written as is (asn1js' own RawData writes nothing when
 * nested): the Certificate carries the exact TBS bytes that were signed, serialised once.
 */
class Encoded {
  constructor(private readonly der: ArrayBuffer) {}
  toBER(_sizeOnly?: boolean, writer?: asn1js.ViewWriter): ArrayBuffer {
    if (!writer) return this.der;
    writer.write(this.der);
    return new ArrayBuffer(0);
  }
}
const encoded = (der: ArrayBuffer) => new Encoded(der) as unknown as asn1js.BaseBlock;

/** The signed certificate, as PEM (64-character lines, as @peculiar/x509 wrote it). */
export function signLeaf(f: LeafFields, issuer: LeafIssuer): string {
  const tbs = AsnSerializer.serialize(tbsCertificate(f, issuer));
  const signature = sign(issuer.hash, new Uint8Array(tbs), { key: issuer.key, dsaEncoding: 'der' });
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING } (RFC 5280 §4.1)
  const der = new asn1js.Sequence({
    value: [
      encoded(tbs),
      encoded(issuer.signatureAlgorithmDer),
      new asn1js.BitString({ valueHex: new Uint8Array(signature).buffer }),
    ],
  }).toBER();
  return `-----BEGIN CERTIFICATE-----\n${Buffer.from(der)
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END CERTIFICATE-----`;
}
