import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { type EnvVars, fingerprintOf } from './env-source.js';
import { loadGatewayConfig } from './load.js';
import type { GatewayConfig } from './types.js';

export type ReloadTrigger = 'file' | 'poll' | 'signal' | 'admin';

export type ReloadResult =
  | { readonly ok: true; readonly changed: boolean; readonly restartNeeded: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[] };

export interface ReloaderOptions {
  readonly processEnv: EnvVars;
  readonly envFile: string;
  /** Fingerprint of the env file content the running configuration was read from. */
  readonly initialFingerprint: string | null;
  /** Applies a validated configuration; answers what could not be applied without a restart. */
  readonly apply: (config: GatewayConfig, vars: EnvVars) => readonly string[];
  readonly logger: Logger;
  /** Quiet time after a file event before reading, so an editor's multi-step save is read once. */
  readonly settleMs?: number;
  /** Safety-net poll of the file's content, for filesystems whose events do not arrive. */
  readonly pollMs?: number;
}

/**
 * Re-reads the env file when it changes (directory watch: editors and bind mounts replace the
 * file by rename, which blinds a watch on the file itself), on SIGHUP and on POST /reload. The
 * new configuration is parsed and validated completely before anything is swapped; an invalid
 * edit keeps the running configuration and is reported once.
 */
export class ConfigReloader {
  lastReloadSuccessful = true;
  lastSuccessTimestampSeconds = Date.now() / 1000;
  successes = 0;
  failures = 0;
  private watcher: FSWatcher | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private settleTimer: NodeJS.Timeout | null = null;
  private fingerprint: string;
  private lastErrorFingerprint: string | null = null;

  constructor(private readonly options: ReloaderOptions) {
    this.fingerprint = options.initialFingerprint ?? this.readFingerprint();
  }

  start(): void {
    const { envFile, logger } = this.options;
    const name = basename(envFile);
    try {
      this.watcher = watch(dirname(envFile), { persistent: false }, (_event, filename) => {
        if (filename === null || filename === name || filename.startsWith(`${name}.`))
          this.scheduleCheck('file');
      });
      this.watcher.on('error', (error) => {
        logger.warn({ dir: dirname(envFile), err: error.message }, 'env file watch failed; polling only');
        this.watcher?.close();
        this.watcher = null;
      });
    } catch (error) {
      logger.warn(
        { dir: dirname(envFile), err: (error as Error).message },
        'cannot watch the env file directory; polling only',
      );
    }
    this.pollTimer = setInterval(() => this.pollForChange(), this.options.pollMs ?? 1000);
    this.pollTimer.unref();
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
  }

  /** Reloads now, whether or not the file changed (SIGHUP, POST /reload). */
  reload(trigger: ReloadTrigger): ReloadResult {
    return this.load(trigger, true);
  }

  private scheduleCheck(trigger: ReloadTrigger): void {
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      this.checkForChange(trigger);
    }, this.options.settleMs ?? 100);
    this.settleTimer.unref();
  }

  /**
   * A change the poll sees waits for the same quiet time as one the watch reports: read at once,
   * an in-place write caught between its truncate and its write is an empty file, which is a
   * valid configuration (the stock defaults, placeholder key included).
   */
  private pollForChange(): void {
    if (this.settleTimer === null && this.readFingerprint() !== this.fingerprint) this.scheduleCheck('poll');
  }

  private checkForChange(trigger: ReloadTrigger): void {
    if (this.readFingerprint() === this.fingerprint) return;
    this.load(trigger, false);
  }

  private load(trigger: ReloadTrigger, forced: boolean): ReloadResult {
    const { logger } = this.options;
    const loaded = loadGatewayConfig(this.options.processEnv, this.options.envFile);
    // The fingerprint of the very bytes just parsed, so an edit landing mid-reload is seen next time.
    if (loaded.fingerprint !== null) this.fingerprint = loaded.fingerprint;
    if (!loaded.ok) {
      this.failures++;
      this.lastReloadSuccessful = false;
      // One report per distinct bad content, not one per poll.
      if (forced || this.lastErrorFingerprint !== this.fingerprint) {
        logger.error(
          { trigger, env_file: this.options.envFile, errors: loaded.errors },
          'configuration reload rejected; the running configuration stays in force',
        );
      }
      this.lastErrorFingerprint = this.fingerprint;
      return { ok: false, errors: loaded.errors };
    }
    this.lastErrorFingerprint = null;
    const restartNeeded = this.options.apply(loaded.config, loaded.vars);
    this.successes++;
    this.lastReloadSuccessful = true;
    this.lastSuccessTimestampSeconds = Date.now() / 1000;
    return { ok: true, changed: true, restartNeeded };
  }

  private readFingerprint(): string {
    try {
      return fingerprintOf(readFileSync(this.options.envFile));
    } catch (error) {
      return fingerprintOf(null, (error as NodeJS.ErrnoException).code ?? 'error');
    }
  }
}
