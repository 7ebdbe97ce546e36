import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'dotenv';

export type EnvVars = Readonly<Record<string, string | undefined>>;

export interface EnvSnapshot {
  readonly file: string;
  readonly fileFound: boolean;
  readonly vars: EnvVars;
  /** Digest of the file's bytes as read (or of its absence): what the reloader compares. */
  readonly fingerprint: string;
}

export function fingerprintOf(content: Buffer | null, missingCode = 'ENOENT'): string {
  return content === null ? `missing:${missingCode}` : createHash('sha256').update(content).digest('base64');
}

export function envFilePath(processEnv: EnvVars, explicit?: string): string {
  return resolve(explicit ?? processEnv.GATEWAY_ENV_FILE ?? '.env');
}

/**
 * The process environment overlaid by the env file. The file wins because it is what operators
 * edit to rotate keys; a missing file is normal (the stock defaults then apply).
 */
export function readEnvSnapshot(processEnv: EnvVars, file: string): EnvSnapshot {
  let content: Buffer;
  try {
    content = readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return snapshotOf(processEnv, file, null);
    throw new Error(cannotRead(file, (error as NodeJS.ErrnoException).code));
  }
  return snapshotOf(processEnv, file, content);
}

export function cannotRead(file: string, code: string | undefined): string {
  return `cannot read env file ${file}: ${code ?? 'error'}`;
}

/** The snapshot of env file bytes already read (`null`: no file), as the reloader reads them. */
export function snapshotOf(processEnv: EnvVars, file: string, content: Buffer | null): EnvSnapshot {
  if (content === null) {
    return { file, fileFound: false, vars: { ...processEnv }, fingerprint: fingerprintOf(null) };
  }
  return {
    file,
    fileFound: true,
    vars: { ...processEnv, ...parse(content) },
    fingerprint: fingerprintOf(content),
  };
}
