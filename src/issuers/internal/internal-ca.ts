import { X509Certificate, randomBytes, webcrypto } from 'node:crypto';
import type { Clock } from '../../core/clock.ts';
import { DAY_MS } from '../../core/clock.ts';
import { CertfleetError } from '../../core/errors.ts';
import type { KeyType } from '../../core/types.ts';
import {
  generateKey,
  generatePrivateKeyPem,
  publicKeyOf,
  signingAlgorithm,
  toCryptoKeyPair,
} from '../../pki/keys.ts';
import type { Sealer } from '../../store/sealing.ts';
import type { Store } from '../../store/store.ts';
import { META } from '../../store/meta-catalogue.ts';
import { parsePrivateKey } from '../../pki/private-key.ts';
import { x509 } from '../../pki/x509.ts';
import { leafIssuer, signLeaf, type LeafIssuer } from './leaf-tbs.ts';
import type { IssueRequest, IssuedVersion, Issuer } from '../issuer.ts';
import { randomBytesPooled } from '../../core/random-pool.ts';

interface CaMaterial {
  rootPem: string;
  intermediatePem: string;
  intermediateKeyPem: string;
}

const { internalCaRoot, internalCaRootKey, internalCaIntermediate, internalCaIntermediateKey } = META;

/** A positive 128-bit serial in hex (RFC 5280: at most 20 octets, positive, unpredictable). */
function randomSerial(): string {
  const b = randomBytesPooled(16);
  b[0] &= 0x7f;
  b[0] |= 0x01;
  return b.toString('hex');
}

async function publicCryptoKey(cert: x509.X509Certificate): Promise<CryptoKey> {
  return cert.publicKey.export(webcrypto as unknown as Crypto);
}

/**
 * Key type of a CA made on first start: ECDSA P-256 (128-bit security, as cfssl's default; its signatures cost
 * ~1/12 of P-384's on this hardware, and each leaf is signed once and checked at every deployment). Hubs made
 * before keep their CA as it is (P-384): its leaves are signed with ecdsa-with-SHA384, as before.
 */
export const NEW_CA_KEY_TYPE = 'ecdsa-p256' satisfies KeyType;

/**
 * The hub's own CA: an ECDSA root (10 years) that signs one intermediate (5 years) which signs leaves.
 * Created on first start; the keys are sealed in the store. The root key is kept only so a new intermediate
 * can be made later; leaves are always signed by the intermediate.
 */
export class InternalCa implements Issuer {
  readonly kind = 'internal';

  /** What every leaf needs from the intermediate (its key, name and key identifier), made once. */
  private signer?: Promise<LeafIssuer>;

  private constructor(
    private readonly material: CaMaterial,
    private readonly clock: Clock,
  ) {}

  private signingMaterial() {
    this.signer ??= (async () => {
      const cert = new x509.X509Certificate(this.material.intermediatePem);
      const aki = await x509.AuthorityKeyIdentifierExtension.create(await publicCryptoKey(cert));
      return leafIssuer(cert.rawData, aki.rawData, parsePrivateKey(this.material.intermediateKeyPem));
    })();
    return this.signer;
  }

  /** `newCaKeyType` is used only when the store holds no CA yet; an existing CA is never re-keyed. */
  static async open(
    store: Store,
    sealer: Sealer,
    clock: Clock,
    newCaKeyType: 'ecdsa-p256' | 'ecdsa-p384' = NEW_CA_KEY_TYPE,
  ): Promise<InternalCa> {
    let rootPem = await store.getMeta(internalCaRoot.key);
    if (!rootPem) {
      const created = await createCaMaterial(clock, newCaKeyType);
      // One initMeta: the first writer's whole CA wins, so two hubs starting at once never mix keys and certificates.
      const stored = await store.initMeta({
        [internalCaRootKey.key]: sealer.seal(created.rootKeyPem, internalCaRootKey.sealContext),
        [internalCaIntermediateKey.key]: sealer.seal(
          created.intermediateKeyPem,
          internalCaIntermediateKey.sealContext,
        ),
        [internalCaIntermediate.key]: created.intermediatePem,
        [internalCaRoot.key]: created.rootPem,
      });
      rootPem = stored[internalCaRoot.key];
    }
    const intermediatePem = (await store.getMeta(internalCaIntermediate.key))!;
    const intermediateKeyPem = sealer.unseal(
      (await store.getMeta(internalCaIntermediateKey.key))!,
      internalCaIntermediateKey.sealContext,
    );
    return new InternalCa({ rootPem, intermediatePem, intermediateKeyPem }, clock);
  }

  get rootPem(): string {
    return this.material.rootPem;
  }

  get intermediatePem(): string {
    return this.material.intermediatePem;
  }

  /** SHA-256 fingerprint of the root, as agents pin it at enrollment. */
  get rootFingerprint(): string {
    return new X509Certificate(this.material.rootPem).fingerprint256.replaceAll(':', '').toLowerCase();
  }

  async issue(req: IssueRequest): Promise<IssuedVersion> {
    req.signal?.throwIfAborted();
    // The leaf is signed for the new public key as generated: its private half is never parsed back.
    const { keyPem, spkiDer } = await generateKey(req.keyType);
    const certPem = await this.signPublicKey(spkiDer, req.keyType, req.sans, req.lifetimeDays, {
      serverAuth: true,
      clientAuth: true,
    });
    return { certPem, chainPems: [this.material.intermediatePem], keyPem };
  }

  /** Signs a leaf for the given key; also used for the hub's own TLS certificate and agent client certificates. */
  async signLeaf(
    keyPem: string,
    sans: string[],
    lifetimeDays: number,
    usage: { serverAuth?: boolean; clientAuth?: boolean },
    commonName = sans[0],
  ): Promise<string> {
    const { spkiDer, keyType } = publicKeyOf(keyPem);
    if (!keyType)
      throw new CertfleetError(
        'UNKNOWN_KEY_TYPE',
        'unsupported private key type',
        'use an ECDSA P-256/P-384 or RSA 2048-4096 key',
      );
    return this.signPublicKey(spkiDer, keyType, sans, lifetimeDays, usage, commonName);
  }

  private async signPublicKey(
    spkiDer: Buffer,
    keyType: KeyType,
    sans: string[],
    lifetimeDays: number,
    usage: { serverAuth?: boolean; clientAuth?: boolean },
    commonName = sans[0],
  ): Promise<string> {
    const now = this.clock.now().getTime();
    const certPem = signLeaf(
      {
        serialHex: randomSerial(),
        commonName,
        sans,
        notBefore: new Date(now - 60_000), // tolerate small clock skew on endpoints
        notAfter: new Date(now + lifetimeDays * DAY_MS),
        spkiDer,
        keyEncipherment: keyType.startsWith('rsa'),
        usage,
      },
      await this.signingMaterial(),
    );
    return certPem + '\n';
  }
}

async function createCaMaterial(clock: Clock, keyType: 'ecdsa-p256' | 'ecdsa-p384') {
  const now = clock.now().getTime();
  const rootKeyPem = await generatePrivateKeyPem(keyType);
  const intermediateKeyPem = await generatePrivateKeyPem(keyType);
  const { keys: rootKeys } = await toCryptoKeyPair(rootKeyPem);
  const { keys: intKeys } = await toCryptoKeyPair(intermediateKeyPem);
  const suffix = randomBytes(4).toString('hex');
  const rootName = `CN=certfleet internal root ${suffix},O=certfleet`;
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: rootName,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3650 * DAY_MS),
    keys: rootKeys,
    signingAlgorithm: signingAlgorithm(keyType),
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=certfleet internal intermediate ${suffix},O=certfleet`,
    issuer: root.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 1825 * DAY_MS),
    publicKey: intKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: signingAlgorithm(keyType),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(intKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  return {
    rootPem: root.toString('pem') + '\n',
    rootKeyPem,
    intermediatePem: intermediate.toString('pem') + '\n',
    intermediateKeyPem,
  };
}
