import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CertfleetError } from '../core/errors.ts';
import { writePrivateFile } from '../core/private-file.ts';
import { newOkpKeyPair, rawPublicKey } from '../protocol/request-signature.ts';

export const DEFAULT_STATE_DIR = '/var/lib/certfleet-agent';

/** `<state-dir>/agent.json`: where the hub is and which CA to trust. No secrets. */
export interface AgentConfigFile {
  /** The first hub of `hubs` (what agents before several hubs read). */
  hub: string;
  /** Every hub URL, in order of preference (one database behind them); absent in files written before. */
  hubs?: string[];
  endpointId: string;
  endpointName: string;
  /** The hub root CA, pinned at enrollment by its SHA-256 fingerprint. */
  caPem: string;
  caFingerprint: string;
  enrolledAt: string;
}

/** The agent's keys: Ed25519 signs requests, X25519 receives sealed private keys. */
export interface AgentKeys {
  signing: KeyObject;
  sealing: KeyObject;
}

export interface AgentIdentity extends AgentConfigFile {
  keys: AgentKeys;
}

export function generateAgentKeys(): AgentKeys {
  return {
    signing: newOkpKeyPair('ed25519').privateKey,
    sealing: newOkpKeyPair('x25519').privateKey,
  };
}

export const publicKeysOf = (keys: AgentKeys) => ({
  signingKey: rawPublicKey(createPublicKey(keys.signing)),
  sealingKey: rawPublicKey(createPublicKey(keys.sealing)),
});

export async function ensureStateDir(stateDir: string): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await chmod(stateDir, 0o700);
}

export async function saveIdentity(stateDir: string, identity: AgentIdentity): Promise<void> {
  await ensureStateDir(stateDir);
  const pem =
    (identity.keys.signing.export({ type: 'pkcs8', format: 'pem' }) as string) +
    (identity.keys.sealing.export({ type: 'pkcs8', format: 'pem' }) as string);
  await writePrivateFile(join(stateDir, 'agent-key.pem'), pem);
  const { keys: _keys, ...config } = identity;
  await writePrivateFile(join(stateDir, 'agent.json'), `${JSON.stringify(config, null, 2)}\n`);
}

const ENROLL_COMMAND =
  '`certfleet agent enroll --hub URL --token T --ca-fingerprint SHA256 --state-dir DIR` (mint the token on the hub with `certfleet endpoint enroll-token NAME`)';

const CONFIG_FIELDS = ['hub', 'endpointId', 'endpointName', 'caPem'] as const;

function parseConfig(path: string, text: string): AgentConfigFile {
  const corrupt = (why: string) =>
    new CertfleetError(
      'CONFIG_INVALID',
      `${path} is corrupted (${why})`,
      `enroll the agent again: ${ENROLL_COMMAND}`,
      {
        details: { path },
      },
    );
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw corrupt('not valid JSON');
  }
  const missing = CONFIG_FIELDS.filter(
    (f) => typeof (doc as Record<string, unknown> | null)?.[f] !== 'string',
  );
  if (missing.length) throw corrupt(`no ${missing.join(', ')}`);
  return doc as AgentConfigFile;
}

export async function loadIdentity(stateDir: string): Promise<AgentIdentity> {
  let configText: string;
  let keyText: string;
  try {
    configText = await readFile(join(stateDir, 'agent.json'), 'utf8');
    keyText = await readFile(join(stateDir, 'agent-key.pem'), 'utf8');
  } catch (e) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `no agent enrollment in ${stateDir} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      `enroll first: ${ENROLL_COMMAND}`,
    );
  }
  const config = parseConfig(join(stateDir, 'agent.json'), configText);
  const keyPath = join(stateDir, 'agent-key.pem');
  const blocks = keyText.match(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/g) ?? [];
  const keys = blocks.flatMap((b) => {
    try {
      return [createPrivateKey(b)];
    } catch {
      return []; // a damaged block: reported below as a missing key
    }
  });
  const signing = keys.find((k) => k.asymmetricKeyType === 'ed25519');
  const sealing = keys.find((k) => k.asymmetricKeyType === 'x25519');
  if (!signing || !sealing) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      `${keyPath} is corrupted (it does not hold the agent's Ed25519 and X25519 keys)`,
      `enroll the agent again: ${ENROLL_COMMAND}`,
      { details: { path: keyPath } },
    );
  }
  return { ...config, hubs: config.hubs?.length ? config.hubs : [config.hub], keys: { signing, sealing } };
}
