import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CertfleetError } from '../core/errors.ts';
import type { StoreCheckReport } from '../hub/store-check.ts';
import { migrationNames } from '../store/migrations.ts';

/**
 * What is inside the age encryption of a backup: one JSON document (so `age -d -i id backup.age | jq .manifest`
 * reads it with standard tools), `{ format, manifest, parts }`, where each part is a file of the data directory in
 * base64 and the manifest lists each part's size and SHA-256. docs/backup.md describes the format.
 */
export const BACKUP_FORMAT = 'certfleet-backup';
export const BACKUP_FORMAT_VERSION = 1;

/** The parts a backup can hold: the SQLite snapshot, the master key (hex, as master.key), the hub config. */
export const PART = { database: 'hub.db', masterKey: 'master.key', hubConfig: 'hub.yaml' } as const;
export type PartName = (typeof PART)[keyof typeof PART];

export interface BackupManifest {
  formatVersion: number;
  certfleetVersion: string;
  createdAt: string;
  /** The store's schema: the migrations applied in the snapshot. A build that lacks one cannot open it. */
  schema: { dialect: 'sqlite'; migrations: string[] };
  /** Where the hub read its master key (the backup holds the key itself either way). */
  masterKeySource: 'file' | 'env';
  /** What the snapshot held, by the same check verify runs on the restored copy. */
  counts: StoreCheckReport['counts'];
  parts: Array<{ name: PartName; bytes: number; sha256: string }>;
}

export type BackupParts = Partial<Record<PartName, Buffer>>;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** This build's version, from package.json (the one place it is set). */
export const certfleetVersion: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export function encodeBackup(
  manifest: Omit<BackupManifest, 'parts' | 'formatVersion'>,
  parts: BackupParts,
): { payload: Buffer; manifest: BackupManifest } {
  const entries = Object.entries(parts) as Array<[PartName, Buffer]>;
  const full: BackupManifest = {
    formatVersion: BACKUP_FORMAT_VERSION,
    ...manifest,
    parts: entries.map(([name, b]) => ({ name, bytes: b.length, sha256: sha256(b) })),
  };
  const doc = {
    format: BACKUP_FORMAT,
    manifest: full,
    parts: Object.fromEntries(entries.map(([name, b]) => [name, b.toString('base64')])),
  };
  return { payload: Buffer.from(JSON.stringify(doc)), manifest: full };
}

/**
 * Reads a decrypted backup: the format, every part against its size and SHA-256, and the schema against the
 * migrations this build knows (a backup from a newer certfleet is refused before anything is written).
 */
export function decodeBackup(
  payload: Uint8Array,
  what: string,
): { manifest: BackupManifest; parts: BackupParts } {
  const damaged = (why: string) =>
    new CertfleetError(
      'BACKUP_INVALID',
      `${what} decrypts but is not a certfleet backup (${why})`,
      'pass a file written by `certfleet backup create`; if it is one, it was damaged before it was encrypted',
    );
  let doc: { format?: unknown; manifest?: BackupManifest; parts?: Record<string, unknown> };
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw damaged('not JSON');
  }
  if (doc?.format !== BACKUP_FORMAT || !doc.manifest || !doc.parts) throw damaged('no manifest');
  const { manifest } = doc;
  if (typeof manifest.formatVersion !== 'number' || manifest.formatVersion > BACKUP_FORMAT_VERSION) {
    throw new CertfleetError(
      'BACKUP_INVALID',
      `${what} has backup format ${manifest.formatVersion}; this certfleet ${certfleetVersion} reads format ${BACKUP_FORMAT_VERSION}`,
      `restore it with certfleet ${manifest.certfleetVersion} or newer`,
    );
  }
  const known = new Set(migrationNames('sqlite'));
  const unknown = (manifest.schema?.migrations ?? []).filter((m) => !known.has(m));
  if (unknown.length) {
    throw new CertfleetError(
      'BACKUP_INVALID',
      `${what} is from a newer schema (certfleet ${manifest.certfleetVersion}: migration ${unknown.join(', ')} unknown to certfleet ${certfleetVersion})`,
      `restore it with certfleet ${manifest.certfleetVersion} or newer; an older build cannot read a newer store`,
    );
  }
  const parts: BackupParts = {};
  for (const p of manifest.parts ?? []) {
    const b64 = doc.parts[p.name];
    if (typeof b64 !== 'string') throw damaged(`part ${p.name} is missing`);
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length !== p.bytes || sha256(bytes) !== p.sha256) {
      throw damaged(`part ${p.name} does not match its SHA-256 in the manifest`);
    }
    parts[p.name] = bytes;
  }
  if (!parts[PART.database] || !parts[PART.masterKey])
    throw damaged('the database or the master key is missing');
  return { manifest, parts };
}
