/** One finding of `certfleet doctor`: what was checked, how it stands, in words, and the fix. */
export interface Diagnosis {
  check: string;
  status: 'ok' | 'warn' | 'fail';
  message: string;
  fix: string;
  /** Facts behind the verdict (CA detail, command, exit code, times); never secrets. */
  evidence?: Record<string, unknown>;
}

export interface DoctorReport {
  at: string;
  /** Checks of the ACME issuers the certificates use (directory, TLS trust, account, clock). */
  issuers: Array<{ name: string; directoryUrl: string; diagnoses: Diagnosis[] }>;
  certificates: Array<{ name: string; issuer: string; diagnoses: Diagnosis[] }>;
  /** True when no diagnosis failed. */
  ok: boolean;
}
