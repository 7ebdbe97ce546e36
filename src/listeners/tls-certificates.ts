import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { TlsFiles } from '../config/types.js';
import type { Logger } from '../observability/logger.js';

/** A certificate and its key, read and checked to belong together. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Unix time (seconds) after which the leaf certificate is no longer valid. */
  readonly notAfterSeconds: number;
  readonly subject: string;
}

export type TlsLoadResult =
  | { readonly ok: true; readonly material: TlsMaterial; readonly fingerprint: string }
  | { readonly ok: false; readonly error: string; readonly fingerprint: string };

function readOrError(path: string, variable: string): Buffer | string {
  try {
    return readFileSync(path);
  } catch (error) {
    return `${variable}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}

/**
 * Reads TLS_CERT_FILE and TLS_KEY_FILE and checks them the way the listeners will use them. A
 * message names the variable and file at fault, never the key's content.
 */
export function loadTlsMaterial(files: TlsFiles): TlsLoadResult {
  const cert = readOrError(files.certFile, 'TLS_CERT_FILE');
  const key = readOrError(files.keyFile, 'TLS_KEY_FILE');
  const fingerprint = fingerprintOf(cert, key);
  if (typeof cert === 'string') return { ok: false, error: cert, fingerprint };
  if (typeof key === 'string') return { ok: false, error: key, fingerprint };
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    return {
      ok: false,
      error: `TLS_CERT_FILE: ${files.certFile} does not hold a PEM certificate`,
      fingerprint,
    };
  }
  try {
    createSecureContext({ cert, key });
  } catch (error) {
    const mismatch = /key values mismatch/i.test((error as Error).message);
    return {
      ok: false,
      error: mismatch
        ? `TLS_KEY_FILE: ${files.keyFile} is not the private key of the certificate in ${files.certFile}`
        : `TLS_KEY_FILE: ${files.keyFile} does not hold a usable PEM private key (an encrypted key is not supported)`,
      fingerprint,
    };
  }
  return {
    ok: true,
    material: {
      cert,
      key,
      notAfterSeconds: Math.floor(Date.parse(leaf.validTo) / 1000),
      subject: leaf.subject.replaceAll('\n', ', '),
    },
    fingerprint,
  };
}

function fingerprintOf(cert: Buffer | string, key: Buffer | string): string {
  return createHash('sha256').update(cert).update('\0').update(key).digest('base64');
}

/** What is wrong with the TLS certificate and key files, or null when they are usable. */
export function tlsFilesProblem(files: TlsFiles): string | null {
  const loaded = loadTlsMaterial(files);
  return loaded.ok ? null : loaded.error;
}

export interface TlsReloaderOptions {
  readonly files: TlsFiles;
  readonly initial: TlsMaterial;
  readonly initialFingerprint: string;
  /** Installs new material on every TLS listener (for new connections). */
  readonly apply: (material: TlsMaterial) => void;
  readonly logger: Logger;
  readonly pollMs?: number;
}

/**
 * Re-reads the certificate and key when their content changes (polled: a renewal tool, a bind
 * mount and a Kubernetes Secret all replace files differently, and content is what matters).
 * A pair that does not check out keeps the running certificate; it is reported once per
 * content, since a renewal that writes the two files one after the other is briefly mismatched.
 */
export class TlsReloader {
  reloads = 0;
  failures = 0;
  current: TlsMaterial;
  private fingerprint: string;
  private reportedFingerprint: string | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: TlsReloaderOptions) {
    this.current = options.initial;
    this.fingerprint = options.initialFingerprint;
  }

  start(): void {
    this.timer = setInterval(() => this.check(), this.options.pollMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  check(): void {
    const loaded = loadTlsMaterial(this.options.files);
    if (loaded.fingerprint === this.fingerprint) return;
    if (!loaded.ok) {
      if (this.reportedFingerprint !== loaded.fingerprint) {
        this.failures++;
        this.reportedFingerprint = loaded.fingerprint;
        this.options.logger.warn(
          { error: loaded.error },
          'TLS files changed but cannot be used (yet); the running certificate stays in force',
        );
      }
      return;
    }
    this.fingerprint = loaded.fingerprint;
    this.reportedFingerprint = null;
    this.current = loaded.material;
    this.options.apply(loaded.material);
    this.reloads++;
    this.options.logger.info(
      {
        subject: loaded.material.subject,
        not_after: new Date(loaded.material.notAfterSeconds * 1000).toISOString(),
      },
      'TLS certificate reloaded',
    );
  }
}
