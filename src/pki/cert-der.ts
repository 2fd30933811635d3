/**
 * The parts of a certificate's DER (RFC 5280 §4.1) that chain judgement and key matching read, found by walking the
 * structure rather than parsing it whole with a schema (node's X509Certificate has already parsed and accepted the
 * certificate; what node 20 does not expose is read here). Throws on anything it does not expect.
 */
import { children, contents, oidString, tlv, type Tlv } from './der.ts';

export interface CertificateParts {
  /** The outer signatureAlgorithm's OID, dotted. */
  signatureOid: string;
  /** The SubjectPublicKeyInfo element as encoded, header included. */
  spki: Uint8Array;
  /** Each extension's value (the extnValue OCTET STRING's contents) by OID; the first of each OID. */
  extensions: Map<string, Uint8Array>;
}

export function certificateParts(der: Uint8Array): CertificateParts {
  const cert = children(der, tlv(der, 0, 0x30));
  if (cert.length !== 3 || cert[0].tag !== 0x30 || cert[1].tag !== 0x30) throw new Error('not a Certificate');
  const signatureOid = oidString(der, children(der, cert[1])[0]);
  const tbs = children(der, cert[0]);
  // [0] version, serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, [1], [2], [3] extensions
  const first = tbs[0]?.tag === 0xa0 ? 1 : 0;
  const spki = tbs[first + 5];
  if (spki?.tag !== 0x30) throw new Error('no SubjectPublicKeyInfo');
  const extensions = extensionMap(der, tbs.slice(first + 6));
  return { signatureOid, spki: der.subarray(spki.at, spki.end), extensions };
}

/**
 * The extensions among a TBSCertificate's trailing elements ([1], [2] unique identifiers are skipped): each one's
 * value (the extnValue OCTET STRING's contents) by OID, the first of each OID.
 */
export function extensionMap(der: Uint8Array, trailing: Tlv[]): Map<string, Uint8Array> {
  const extensions = new Map<string, Uint8Array>();
  for (const e of trailing) {
    if (e.tag !== 0xa3) continue; // issuerUniqueID, subjectUniqueID
    const list = children(der, e);
    if (list.length !== 1 || list[0].tag !== 0x30) throw new Error('bad extensions');
    for (const x of children(der, list[0])) {
      if (x.tag !== 0x30) throw new Error('bad extension');
      const f = children(der, x);
      if (f.length < 2 || f.length > 3 || (f.length === 3 && f[1].tag !== 0x01))
        throw new Error('bad extension');
      const id = oidString(der, f[0]);
      const value = contents(der, f[f.length - 1], 0x04);
      if (!extensions.has(id)) extensions.set(id, value);
    }
  }
  return extensions;
}
