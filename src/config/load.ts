import { type EnvSnapshot, type EnvVars, envFilePath, readEnvSnapshot } from './env-source.js';
import { type ConfigResult, parseGatewayConfig } from './parse.js';

export type LoadResult = ConfigResult & {
  readonly fingerprint: string | null;
  /** The merged environment that was parsed (what a cluster primary hands its workers). */
  readonly vars: EnvVars;
};

/** Reads the environment and env file, then parses: what start-up, reload and `check` all call. */
export function loadGatewayConfig(processEnv: EnvVars, explicitEnvFile?: string): LoadResult {
  const file = envFilePath(processEnv, explicitEnvFile);
  let snapshot: ReturnType<typeof readEnvSnapshot>;
  try {
    snapshot = readEnvSnapshot(processEnv, file);
  } catch (error) {
    return { ok: false, errors: [(error as Error).message], fingerprint: null, vars: processEnv };
  }
  return loadSnapshot(snapshot);
}

/** Parses an env snapshot already taken (the reloader's, read once the file was stable). */
export function loadSnapshot(snapshot: EnvSnapshot): LoadResult {
  return {
    ...parseGatewayConfig(snapshot.vars, snapshot.file),
    fingerprint: snapshot.fingerprint,
    vars: snapshot.vars,
  };
}
