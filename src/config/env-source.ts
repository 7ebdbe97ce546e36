import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'dotenv';

export type EnvVars = Readonly<Record<string, string | undefined>>;

export interface EnvSnapshot {
  readonly file: string;
  readonly fileFound: boolean;
  readonly vars: EnvVars;
}

export function envFilePath(processEnv: EnvVars, explicit?: string): string {
  return resolve(explicit ?? processEnv.GATEWAY_ENV_FILE ?? '.env');
}

/**
 * The process environment overlaid by the env file. The file wins because it is what operators
 * edit to rotate keys; a missing file is normal (the stock defaults then apply).
 */
export function readEnvSnapshot(processEnv: EnvVars, file: string): EnvSnapshot {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return { file, fileFound: false, vars: { ...processEnv } };
    }
    throw new Error(`cannot read env file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return { file, fileFound: true, vars: { ...processEnv, ...parse(text) } };
}
