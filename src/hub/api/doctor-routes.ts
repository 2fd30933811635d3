import type { AppDeps, ZodApi } from './build-app.ts';

export function registerDoctorRoutes(_api: ZodApi, _deps: AppDeps): void {}
