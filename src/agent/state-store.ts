import { appendFile, mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CertfleetError } from '../core/errors.ts';
import type { DeploymentState } from '../deploy/states.ts';
import { writePrivateFile } from '../core/private-file.ts';
import type { AgentReport, BundleResponse, DesiredState } from '../protocol/wire.ts';

/** What the agent last did per subscription. */
export interface DeployedRecord {
  versionId: string;
  state: DeploymentState;
  at: string;
  nextWindowAt?: string;
}

export interface AgentLocalState {
  /** The last desired state received: the agent starts from it when the hub is down. */
  desired?: DesiredState;
  deployed: Record<string, DeployedRecord>;
  /** The last manual deploy request (`redeploy.token`) acted on, per subscription. */
  redeployed?: Record<string, string>;
}

/** A state file that exists but cannot be used: names the file and the fix. */
export class CorruptFileError extends CertfleetError {
  constructor(
    readonly path: string,
    why: string,
    hint: string,
  ) {
    super('CONFIG_INVALID', `${path} is corrupted (${why})`, hint, { details: { path } });
  }
}

/** A report the hub refused for good (4xx), kept in `reports-refused.jsonl` instead of being dropped. */
export interface RefusedReport {
  refusedAt: string;
  error: string;
  report: AgentReport;
}

/**
 * The agent's local cache in its state dir (0700): `state.json`, `bundles/<versionId>.json` (as received: the
 * private key stays sealed to the agent's X25519 key, and the file is 0600 anyway), `reports.json` (transitions
 * not yet accepted by the hub), `reports-refused.jsonl` (reports the hub refused, one JSON object a line).
 * Every file is replaced atomically, so a crash leaves the old or the new one.
 *
 * A file that exists but does not parse is never taken for an empty one: reading it throws `CorruptFileError`
 * (file + fix). `state.json` stops the agent (delete it to resync); `reports.json` and bundles are set aside
 * by the caller with `setAside`, so nothing queued disappears without a trace.
 */
export class AgentStateStore {
  constructor(readonly stateDir: string) {}

  private get bundleDir() {
    return join(this.stateDir, 'bundles');
  }

  async load(): Promise<AgentLocalState> {
    const path = join(this.stateDir, 'state.json');
    const s = await readJson<AgentLocalState>(
      path,
      (d) => isObject(d) && (d.deployed === undefined || isObject(d.deployed)),
      `delete ${path} and start the agent again: it resyncs from the hub, and outputs already in place are not rewritten`,
    );
    return { deployed: {}, ...s };
  }

  async save(state: AgentLocalState): Promise<void> {
    await writePrivateFile(join(this.stateDir, 'state.json'), JSON.stringify(state));
  }

  bundlePath(versionId: string): string {
    if (!/^[0-9a-f-]{36}$/.test(versionId))
      throw new Error(`invalid version id ${JSON.stringify(versionId)}`);
    return join(this.bundleDir, `${versionId}.json`);
  }

  async loadBundle(versionId: string): Promise<BundleResponse | undefined> {
    const path = this.bundlePath(versionId);
    return readJson<BundleResponse>(
      path,
      (d) =>
        isObject(d) &&
        d.versionId === versionId &&
        typeof d.certPem === 'string' &&
        Array.isArray(d.chainPems) &&
        isObject(d.sealedKey),
      `delete ${path}: the agent fetches the bundle again from the hub`,
    );
  }

  async saveBundle(bundle: BundleResponse): Promise<void> {
    await mkdir(this.bundleDir, { recursive: true, mode: 0o700 });
    await writePrivateFile(this.bundlePath(bundle.versionId), JSON.stringify(bundle));
  }

  /** Removes bundles no longer referenced (keeps the desired and the deployed version of every subscription). */
  async pruneBundles(keep: Set<string>): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.bundleDir);
    } catch {
      return;
    }
    for (const n of names) {
      if (n.endsWith('.json') && !keep.has(n.slice(0, -5)))
        await rm(join(this.bundleDir, n), { force: true });
    }
  }

  /** The queued reports; throws `CorruptFileError` when `reports.json` cannot be read as a list of reports. */
  async pendingReports(): Promise<AgentReport[]> {
    const path = join(this.stateDir, 'reports.json');
    return (
      (await readJson<AgentReport[]>(
        path,
        (d) => Array.isArray(d) && d.every(isObject),
        `the reports in ${path} were not sent: read it to see which transitions the hub missed, then delete it`,
      )) ?? []
    );
  }

  async savePendingReports(reports: AgentReport[]): Promise<void> {
    await writePrivateFile(join(this.stateDir, 'reports.json'), JSON.stringify(reports));
  }

  /** Appends reports the hub refused for good to `reports-refused.jsonl` (0600); returns its path. */
  async keepRefusedReports(refused: RefusedReport[]): Promise<string> {
    const path = join(this.stateDir, 'reports-refused.jsonl');
    await appendFile(path, refused.map((r) => `${JSON.stringify(r)}\n`).join(''), { mode: 0o600 });
    return path;
  }

  /** Renames a corrupted file to `<path>.corrupt-<time>` (kept for the operator); returns the new path. */
  async setAside(path: string, now: Date): Promise<string> {
    const aside = `${path}.corrupt-${now.toISOString().replace(/[:.]/g, '-')}`;
    await rename(path, aside);
    return aside;
  }
}

const isObject = (d: unknown): d is Record<string, unknown> =>
  typeof d === 'object' && d !== null && !Array.isArray(d);

async function readJson<T>(
  path: string,
  valid: (doc: unknown) => boolean,
  hint: string,
): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new CertfleetError(
      'CONFIG_INVALID',
      `cannot read ${path} (${code ?? 'error'})`,
      'run the agent as the user that owns its state directory',
      { cause: e },
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CorruptFileError(path, 'not valid JSON', hint);
  }
  if (!valid(doc)) throw new CorruptFileError(path, 'not the expected content', hint);
  return doc as T;
}
