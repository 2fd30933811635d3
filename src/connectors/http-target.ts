import { resolve } from 'node:path';
import { CertfleetError, errorMessage } from '../core/errors.ts';
import type { ProbeTarget } from '../core/types.ts';
import type { DeployRecord } from '../deploy/deploy-record.ts';
import type { CommandOptions, CommandResult, PreviousFile, VerifyOptions } from '../deploy/deploy-target.ts';
import type { HookContext } from '../deploy/hook-env.ts';
import type { RenderedOutput } from '../deploy/render-outputs.ts';
import { verifyServed, type ServedExpectation, type VerifyResult } from '../deploy/verify-served.ts';
import { fingerprintOf, splitPemCertificates } from '../pki/inspect.ts';
import type { ConnectorTarget, RecordStore, UploadedFile, UploadedStore } from './connector-target.ts';
import { runStep, secretForms } from './http-request.ts';
import type { HttpConnectorSettings, HttpGroup } from './http-settings.ts';
import {
  BUNDLE_PLACEHOLDERS,
  PLACEHOLDER_FORMAT,
  secretName,
  type BundlePlaceholder,
  type Values,
} from './http-template.ts';

export interface HttpTargetOptions {
  key: string;
  endpointName: string;
  settings: HttpConnectorSettings;
  /** Unsealed for this run only. */
  secrets: Record<string, string>;
  records: RecordStore & UploadedStore;
}

/** The pipeline commands an http endpoint runs: its `check` requests as the config test, `activate` as the reload. */
export const HTTP_COMMANDS = {
  config_test: 'http connector: check requests',
  reload: 'http connector: activate requests',
} as const;

/** A file's bytes as a bundle placeholder's text. */
interface Material {
  format: string;
  data: Buffer;
}

/**
 * An appliance's HTTP API as a DeployTarget. The pipeline's write sends the `upload` requests with the rendered
 * outputs (placeholders by output format: `{{cert_pem}}` is the `cert` output, `{{pfx_base64}}` the `pkcs12` one),
 * its config test the `check` requests, its reload the `activate` requests, and a rollback the `rollback`
 * requests (default: `upload`) with the previous bundle. An API cannot be read back, so what the hub uploaded to
 * each output path is kept on the hub, sealed (UploadedStore): that is what `readCurrent` returns and what a
 * rollback re-uploads. Output paths only name the objects.
 *
 * Every request has its own timeout; once one got no answer, the rest of the run fails at once (the API stopped
 * answering: it is not asked again until the next run). Secrets and private material never appear in an error.
 * One subscription at a time (the connector service runs an endpoint's subscriptions one after another).
 */
export class HttpTarget implements ConnectorTarget {
  readonly key: string;
  private uploaded?: Record<string, UploadedFile>;
  private gaveUp?: unknown;

  constructor(private readonly opts: HttpTargetOptions) {
    this.key = opts.key;
  }

  /** The commands the pipeline runs for this endpoint's subscriptions (none when a group has no requests). */
  get commands(): { configTest?: string; reload?: string } {
    const s = this.opts.settings;
    return {
      ...(s.check.length ? { configTest: HTTP_COMMANDS.config_test } : {}),
      ...(s.activate.length ? { reload: HTTP_COMMANDS.reload } : {}),
    };
  }

  private async files(): Promise<Record<string, UploadedFile>> {
    return (this.uploaded ??= { ...(await this.opts.records.loadUploaded()) });
  }

  private async remember(change: (files: Record<string, UploadedFile>) => void): Promise<void> {
    const files = await this.files();
    change(files);
    await this.opts.records.saveUploaded(files);
  }

  async readCurrent(paths: string[]): Promise<PreviousFile[]> {
    const files = await this.files();
    return paths.map((p) => {
      const f = files[resolve(p)];
      return f
        ? { path: p, previous: Buffer.from(f.data, 'base64'), mode: f.mode }
        : { path: p, previous: 'absent' };
    });
  }

  async writeFilesAtomic(
    files: RenderedOutput[],
    opts: { signal?: AbortSignal; hook?: HookContext },
  ): Promise<void> {
    await this.send('upload', files, opts.hook, opts.signal);
    await this.remember((all) => {
      for (const f of files)
        all[resolve(f.path)] = { data: f.data.toString('base64'), format: f.format, mode: f.mode };
    });
  }

  async restore(previous: PreviousFile[], opts: { hook?: HookContext } = {}): Promise<void> {
    const known = await this.files();
    const present: Material[] = [];
    for (const p of previous) {
      if (p.previous === 'absent') continue;
      const format = known[resolve(p.path)]?.format;
      if (format) present.push({ format, data: p.previous });
    }
    if (present.length) {
      const group: HttpGroup = this.opts.settings.rollback ? 'rollback' : 'upload';
      await this.send(group, present, opts.hook);
    }
    await this.remember((all) => {
      for (const p of previous) {
        const path = resolve(p.path);
        if (p.previous === 'absent') delete all[path];
        else if (all[path]) all[path] = { ...all[path], data: p.previous.toString('base64') };
      }
    });
  }

  async runCommand(command: string, opts: CommandOptions): Promise<CommandResult> {
    const started = performance.now();
    const result = (ok: boolean, message = ''): CommandResult => ({
      command,
      exitCode: ok ? 0 : 1,
      signal: null,
      timedOut: false,
      aborted: !!opts.signal?.aborted,
      ok,
      stdoutTail: '',
      stderrTail: message.slice(-2048),
      durationMs: Math.round(performance.now() - started),
    });
    if (command !== HTTP_COMMANDS[opts.step]) {
      return result(
        false,
        `endpoint "${this.opts.endpointName}" is an http connector endpoint: it runs its connector's ${
          opts.step === 'reload' ? 'activate' : 'check'
        } requests, not the command "${command}"; remove configTest/reload from the subscription`,
      );
    }
    try {
      const known = await this.files();
      const material = opts.hook.outputPaths.flatMap((p) => {
        const f = known[resolve(p)];
        return f ? [{ format: f.format, data: Buffer.from(f.data, 'base64') }] : [];
      });
      await this.send(opts.step === 'reload' ? 'activate' : 'check', material, opts.hook, opts.signal);
      return result(true);
    } catch (e) {
      return result(false, errorMessage(e));
    }
  }

  /** Sends a group's requests in order with the given bundle; the first failure ends the group. */
  private async send(
    group: HttpGroup,
    material: Material[],
    hook: HookContext | undefined,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.gaveUp) throw this.gaveUp;
    const values = this.values(material, hook, group);
    const redact = secretForms([
      ...Object.values(this.opts.secrets),
      ...material
        .filter((m) => m.format === 'key' || m.format === 'pkcs12')
        .flatMap((m) => [m.data.toString('utf8'), m.data.toString('base64')]),
    ]);
    for (const step of this.opts.settings[group] ?? []) {
      try {
        await runStep(step, this.opts.settings, values, {
          endpointName: this.opts.endpointName,
          redact,
          signal,
        });
      } catch (e) {
        if (e instanceof CertfleetError && e.code === 'UNREACHABLE') this.gaveUp = e;
        throw e;
      }
    }
  }

  /** The placeholder values of one bundle; a placeholder the bundle cannot fill is a configuration error. */
  private values(material: Material[], hook: HookContext | undefined, group: HttpGroup): Values {
    const certPem = material.find((m) => m.format === 'cert' || m.format === 'fullchain');
    const leaf = certPem ? splitPemCertificates(certPem.data.toString('utf8'))[0] : undefined;
    const fingerprint = leaf ? fingerprintOf(leaf) : (hook?.fingerprint ?? '');
    return (name) => {
      if (name in BUNDLE_PLACEHOLDERS) {
        const want = PLACEHOLDER_FORMAT[name as BundlePlaceholder];
        const m = material.find((x) => x.format === want.format);
        if (!m) {
          throw new CertfleetError(
            'CONFIG_INVALID',
            `the ${group} requests of endpoint "${this.opts.endpointName}" use {{${name}}}, but the subscription renders no ${want.format} output`,
            `add an output with format ${want.format} to the subscription (its path only names the object)`,
          );
        }
        return m.data.toString(want.encoding);
      }
      if (name === 'name') return hook?.certificateName ?? '';
      if (name === 'fingerprint') return fingerprint;
      if (name === 'fingerprint_short') return fingerprint.slice(0, 12);
      const secret = secretName(name);
      const value = secret ? this.opts.secrets[secret] : undefined;
      if (value === undefined) {
        throw new CertfleetError(
          'CONFIG_INVALID',
          `the ${group} requests of endpoint "${this.opts.endpointName}" use {{${name}}}, which has no value`,
          'set the connector again with the secret given (secrets are sealed on the hub)',
        );
      }
      return value;
    };
  }

  verify(target: ProbeTarget, expected: ServedExpectation, opts: VerifyOptions): Promise<VerifyResult> {
    return verifyServed(target, expected, opts);
  }

  loadRecord(subscriptionId: string): Promise<DeployRecord | undefined> {
    return this.opts.records.load(subscriptionId);
  }

  saveRecord(record: DeployRecord): Promise<void> {
    return this.opts.records.save(record);
  }

  async close(): Promise<void> {
    this.uploaded = undefined;
  }
}
