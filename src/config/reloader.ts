import { type FSWatcher, readFileSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../observability/logger.js';
import { credentialChanges } from './credential-summary.js';
import { cannotRead, type EnvVars, fingerprintOf, snapshotOf } from './env-source.js';
import { type LoadResult, loadSnapshot } from './load.js';
import { type LoadedConfig, reloadRefusal } from './reload-guard.js';
import { DEFAULT_STABILITY, readWhenStable, type Stability } from './stable-read.js';
import type { GatewayConfig } from './types.js';

export type ReloadTrigger = 'file' | 'poll' | 'signal' | 'admin';

export type ReloadResult =
  /** `changed`: whether the new configuration differs from the one in force before. */
  | { readonly ok: true; readonly changed: boolean; readonly restartNeeded: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[] };

export interface ReloaderOptions {
  readonly processEnv: EnvVars;
  readonly envFile: string;
  /** What start-up loaded, and the fingerprint of the env file bytes it was read from. */
  readonly initial: LoadedConfig & { readonly fingerprint: string | null };
  /** Applies a validated configuration; answers what could not be applied without a restart. */
  readonly apply: (config: GatewayConfig, vars: EnvVars) => readonly string[];
  readonly logger: Logger;
  /** Quiet time after a file event before looking, so an editor's multi-step save is seen once. */
  readonly settleMs?: number;
  /** Safety-net poll of the file's content, for filesystems whose events do not arrive. */
  readonly pollMs?: number;
  readonly stability?: Stability;
}

const NOTHING_TO_DO: ReloadResult = { ok: true, changed: false, restartNeeded: [] };
const REJECTED = 'configuration reload rejected; the running configuration stays in force';

/**
 * Re-reads the env file when it changes (directory watch: editors and bind mounts replace the
 * file by rename, which blinds a watch on the file itself), on SIGHUP and on POST /reload. The
 * file is read only once it holds still, and the new configuration is parsed and validated
 * completely, then checked by the reload guard, before anything is swapped; an invalid or
 * refused edit keeps the running configuration and is reported once. This is the one place a
 * reload is decided and reported, for a single process and a cluster primary alike.
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
  /** The last look found the file still changing; warned once until it holds still. */
  private unsettled = false;
  private warnedUnsettled = false;
  private running: LoadedConfig;
  /** Reloads run one at a time: a forced one waits for a check under way, and the other way round. */
  private queue: Promise<unknown> = Promise.resolve();
  private checking = false;
  private checkAgain = false;
  private stopped = false;

  constructor(private readonly options: ReloaderOptions) {
    this.fingerprint = options.initial.fingerprint ?? this.readFingerprint();
    this.running = { config: options.initial.config, vars: options.initial.vars };
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
    this.stopped = true;
    this.watcher?.close();
    this.watcher = null;
    if (this.pollTimer !== null) clearInterval(this.pollTimer);
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
  }

  /** Reloads now, whether or not the file changed (SIGHUP, POST /reload). */
  reload(trigger: ReloadTrigger): Promise<ReloadResult> {
    return this.exclusive(() => this.readAndLoad(trigger, true));
  }

  private scheduleCheck(trigger: ReloadTrigger): void {
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      this.requestCheck(trigger);
    }, this.options.settleMs ?? 100);
    this.settleTimer.unref();
  }

  private pollForChange(): void {
    if (this.settleTimer === null && !this.checking && this.readFingerprint() !== this.fingerprint) {
      this.scheduleCheck('poll');
    }
  }

  /** Events during a check (a storm of edits) make one more check afterwards, not one each. */
  private requestCheck(trigger: ReloadTrigger): void {
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    this.checking = true;
    void this.exclusive(async () => {
      let last: ReloadResult = NOTHING_TO_DO;
      try {
        do {
          this.checkAgain = false;
          if (this.readFingerprint() === this.fingerprint) break;
          last = await this.readAndLoad(trigger, false);
          // A file that never held still is looked at again, never applied as it was.
        } while ((this.checkAgain || this.unsettled) && !this.stopped);
      } finally {
        this.checking = false;
      }
      return last;
    });
  }

  /** Runs `task` after every reload queued before it; a failure is logged and answered, never thrown. */
  private exclusive(task: () => Promise<ReloadResult>): Promise<ReloadResult> {
    const run = this.queue.then(task).catch((error: Error) => {
      const message = `configuration reload failed: ${error.message}`;
      this.options.logger.error({ env_file: this.options.envFile }, message);
      return { ok: false, errors: [message] } satisfies ReloadResult;
    });
    this.queue = run;
    return run;
  }

  private async readAndLoad(trigger: ReloadTrigger, forced: boolean): Promise<ReloadResult> {
    const { envFile, logger, processEnv } = this.options;
    const read = await readWhenStable(
      envFile,
      this.options.stability ?? DEFAULT_STABILITY,
      () => this.stopped,
    );
    this.unsettled = !read.settled;
    if (!read.settled) {
      // Not a rejection: nothing was judged, and the metrics stay as they are.
      const error = `env file ${envFile} was not read: ${read.reason}; it is read once it holds still`;
      if (forced || !this.warnedUnsettled) logger.warn({ trigger, env_file: envFile }, error);
      this.warnedUnsettled = true;
      return { ok: false, errors: [error] };
    }
    this.warnedUnsettled = false;
    let loaded: LoadResult;
    if ('unreadable' in read) {
      this.fingerprint = fingerprintOf(null, read.unreadable);
      loaded = {
        ok: false,
        errors: [cannotRead(envFile, read.unreadable)],
        fingerprint: null,
        vars: processEnv,
      };
    } else {
      loaded = loadSnapshot(snapshotOf(processEnv, envFile, read.content));
      // The fingerprint of the very bytes parsed, so an edit landing mid-reload is seen next time.
      if (loaded.fingerprint !== null) this.fingerprint = loaded.fingerprint;
    }
    if (!loaded.ok) return this.reject(trigger, forced, loaded.errors);
    const refusal = reloadRefusal(this.running, loaded);
    if (refusal !== null) return this.reject(trigger, forced, [refusal]);

    this.lastErrorFingerprint = null;
    const previous = this.running.config;
    const next = loaded.config;
    const changed = !isDeepStrictEqual(previous, next);
    const restartNeeded = this.options.apply(next, loaded.vars);
    this.running = { config: next, vars: loaded.vars };
    this.successes++;
    this.lastReloadSuccessful = true;
    this.lastSuccessTimestampSeconds = Date.now() / 1000;
    logger.info(
      {
        trigger,
        changed,
        auth_method: next.authMethod,
        api_keys: next.apiKeys.length,
        basic_users: next.basicCredentials.length,
        keys_added: next.apiKeys.filter((key) => !previous.apiKeys.includes(key)).length,
        keys_removed: previous.apiKeys.filter((key) => !next.apiKeys.includes(key)).length,
      },
      'configuration reloaded',
    );
    for (const change of credentialChanges(previous, next)) {
      logger.info({ trigger, ...change }, `credential ${change.credential} ${change.change}`);
    }
    if (restartNeeded.length > 0) {
      logger.warn({ settings: restartNeeded }, 'these changed settings take effect only after a restart');
    }
    return { ok: true, changed, restartNeeded };
  }

  private reject(trigger: ReloadTrigger, forced: boolean, errors: readonly string[]): ReloadResult {
    this.failures++;
    this.lastReloadSuccessful = false;
    // One report per distinct bad content, not one per poll.
    if (forced || this.lastErrorFingerprint !== this.fingerprint) {
      this.options.logger.error({ trigger, env_file: this.options.envFile, errors }, REJECTED);
    }
    this.lastErrorFingerprint = this.fingerprint;
    return { ok: false, errors };
  }

  private readFingerprint(): string {
    try {
      return fingerprintOf(readFileSync(this.options.envFile));
    } catch (error) {
      return fingerprintOf(null, (error as NodeJS.ErrnoException).code ?? 'error');
    }
  }
}
