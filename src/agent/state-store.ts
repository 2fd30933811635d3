import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeploymentState } from '../core/types.ts';
import { writePrivateFile } from './agent-identity.ts';
import type { AgentReport, BundleResponse, DesiredState } from './wire.ts';

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

/**
 * The agent's local cache in its state dir (0700): `state.json`, `bundles/<versionId>.json` (as received: the
 * private key stays sealed to the agent's X25519 key, and the file is 0600 anyway), `reports.json` (transitions
 * not yet accepted by the hub). Every file is replaced atomically, so a crash leaves the old or the new one.
 */
export class AgentStateStore {
  constructor(readonly stateDir: string) {}

  private get bundleDir() {
    return join(this.stateDir, 'bundles');
  }

  async load(): Promise<AgentLocalState> {
    const s = await readJson<AgentLocalState>(join(this.stateDir, 'state.json'));
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
    return readJson<BundleResponse>(this.bundlePath(versionId));
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

  async pendingReports(): Promise<AgentReport[]> {
    return (await readJson<AgentReport[]>(join(this.stateDir, 'reports.json'))) ?? [];
  }

  async savePendingReports(reports: AgentReport[]): Promise<void> {
    await writePrivateFile(join(this.stateDir, 'reports.json'), JSON.stringify(reports));
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined; // a corrupt cache file is as good as none: the hub resends everything on resync
  }
}
