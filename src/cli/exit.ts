/**
 * The one way a CLI command ends with a code other than 0 after printing its result: it throws `CommandExit`.
 * `main()` turns it into the process exit code (bin/certfleet.js sets exactly that), so no command writes
 * `process.exitCode` itself and nothing can overwrite a failure with 0.
 */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export class CommandExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = 'CommandExit';
  }
}

/** Ends the command with `code` (0 returns normally, so callers can write `exitWith(ok ? 0 : 1)`). */
export function exitWith(code: number): void {
  if (code !== 0) throw new CommandExit(code);
}
