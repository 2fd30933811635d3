import { Decrypter, Encrypter } from 'age-encryption';
import { readFile } from 'node:fs/promises';
import { CertfleetError } from '../core/errors.ts';

/**
 * The encryption of a backup file: the age format (age-encryption.org/v1) through the maintained `age-encryption`
 * library, so the standard `age` CLI opens it (`age -d -i identity.txt backup.age`). X25519 recipients
 * (`age1...`) or one scrypt passphrase. Nothing here logs: keys and passphrases only pass through.
 */
export type SealTo = { recipients: string[] } | { passphrase: string };
export type OpenWith = { identities: string[] } | { passphrase: string };

export async function encryptBackup(payload: Uint8Array, to: SealTo): Promise<Uint8Array> {
  const e = new Encrypter();
  if ('passphrase' in to) e.setPassphrase(to.passphrase);
  else {
    if (to.recipients.length === 0) {
      throw new CertfleetError(
        'USAGE',
        'a backup needs at least one recipient or a passphrase',
        'pass --recipient age1... (from `age-keygen -y identity.txt`) or --passphrase-file FILE',
      );
    }
    for (const r of to.recipients) {
      try {
        e.addRecipient(r);
      } catch (cause) {
        throw new CertfleetError(
          'USAGE',
          `"${r.slice(0, 80)}" is not an age recipient`,
          'a recipient is the public key `age-keygen` prints ("Public key: age1..."); `age-keygen -y identity.txt` shows it again',
          { cause },
        );
      }
    }
  }
  return e.encrypt(payload);
}

export async function decryptBackup(file: Uint8Array, using: OpenWith, what: string): Promise<Uint8Array> {
  const d = new Decrypter();
  if ('passphrase' in using) d.addPassphrase(using.passphrase);
  else for (const id of using.identities) d.addIdentity(id);
  try {
    return await d.decrypt(file);
  } catch (cause) {
    const message = (cause as Error)?.message ?? String(cause);
    if (/no identity matched/.test(message)) {
      throw new CertfleetError(
        'BACKUP_INVALID',
        `the ${'passphrase' in using ? 'passphrase' : 'identity'} does not open ${what}`,
        'passphrase' in using
          ? 'use the passphrase file the backup was made with, or --identity if it was made for a recipient'
          : 'use the identity file of a recipient the backup was made for, or --passphrase-file if it was made with a passphrase',
        { cause },
      );
    }
    throw new CertfleetError(
      'BACKUP_INVALID',
      `${what} is damaged or not an age file (${message})`,
      'the file was truncated or modified after it was written: use another copy of the backup',
      { cause },
    );
  }
}

/** Reads an age identity file: `AGE-SECRET-KEY-1...` lines; `#` comments and blank lines are skipped. */
export async function readIdentityFile(path: string): Promise<string[]> {
  const text = await readSecretFile(path, 'identity file');
  const ids = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (ids.length === 0 || !ids.every((l) => l.startsWith('AGE-SECRET-KEY-'))) {
    throw new CertfleetError(
      'USAGE',
      `${path} is not an age identity file`,
      'pass the file `age-keygen -o FILE` wrote (lines starting with AGE-SECRET-KEY-1)',
    );
  }
  return ids;
}

/** Reads a passphrase file: its first line, without the line end. */
export async function readPassphraseFile(path: string): Promise<string> {
  const passphrase = (await readSecretFile(path, 'passphrase file')).split(/\r?\n/)[0];
  if (!passphrase) {
    throw new CertfleetError(
      'USAGE',
      `the passphrase file ${path} is empty`,
      'write the passphrase on its first line (e.g. `openssl rand -base64 32 > FILE`)',
    );
  }
  return passphrase;
}

async function readSecretFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new CertfleetError(
      'USAGE',
      `cannot read the ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      `check the path given for the ${what}`,
    );
  }
}
