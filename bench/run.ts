import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import { removeTempDir, trackTempDir } from '../test/support/processes.js';
import { type RunningRedis, startRedis } from '../test/support/redis.js';
import type { VictoriaMetricsService } from '../test/support/services.js';
import { installTreeCleanup } from './children.js';
import { directContender } from './contenders/direct.js';
import { gatewayAuthHeaders, gatewayContender, REPO_ROOT, startGateway } from './contenders/gateway.js';
import { h1LlhttpRelayContender, h1NodeServerContender } from './contenders/h1-llhttp-relay.js';
import { h2FrameRelayContender } from './contenders/h2-frame-relay.js';
import { NGINX_BINARY, nginxContender } from './contenders/nginx.js';
import { nodeMinimalContender } from './contenders/node-minimal.js';
import { tcpRelayContender } from './contenders/tcp-relay.js';
import { VMAUTH_BINARY, vmauthContender } from './contenders/vmauth.js';
import { exportTraceRequest, grpcFrame } from './payload.js';
import { cpuSeconds, memory, processAlive, processTree, RssSampler } from './proc-stats.js';
import {
  type BenchResult,
  type EntryResult,
  evaluateTargets,
  type MedianResult,
  type RoundResult,
  renderMarkdown,
  type WorkloadResult,
} from './report.js';
import { DEFAULT_GATEWAY_CLI, parseSettings, type Settings, USAGE } from './settings.js';
import { buildGatewaySnapshot } from './snapshot.js';
import { median } from './stats.js';
import type { AuthScheme, ContenderSpec, Measurement, Route, RunningContender } from './types.js';
import { type SinkProcess, startSeededVictoriaMetrics, startSinkProcess } from './upstreams.js';
import { type Fixtures, WORKLOADS, type Workload } from './workloads.js';

const GiB = 1024 * 1024 * 1024;
/** Workloads 8 and 9: a rate far above what two cores can send, so it is configured but never reached. */
const UNREACHED_RATE = '100000/s';
const started = Date.now();

function progress(message: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(0).padStart(4);
  process.stdout.write(`[${seconds}s] ${message}\n`);
}

const fmt = (value: number, digits = 0): string =>
  value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** A contender as one workload runs it: which program, with which credentials. */
interface Entry {
  readonly id: string;
  readonly label: string;
  readonly spec: ContenderSpec;
  readonly auth: AuthScheme;
  readonly variant?: EntryResult['variant'];
  /**
   * The id of the entry whose process this one sends its load to, authenticating as its own
   * `auth` user (that process is configured with both users).
   */
  readonly sharesProcessOf?: string;
}

function requireExecutable(path: string, debianPackage: string): void {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: apt-get install ${debianPackage}`);
  }
}

function commandExists(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function toolVersions(): Record<string, string> {
  const versions: Record<string, string> = {};
  // dpkg-query's own field syntax, not a JavaScript template.
  const format = ['-f=$', '{Version}'].join('');
  for (const pkg of ['nginx-light', 'victoria-metrics', 'wrk', 'nghttp2-client']) {
    try {
      versions[pkg] = execFileSync('dpkg-query', ['-W', format, pkg], { encoding: 'utf8' }).trim();
    } catch {
      versions[pkg] = 'unknown';
    }
  }
  return versions;
}

function gitDescription(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    }).trim();
    return dirty === '' ? commit : `${commit} with uncommitted changes in src/`;
  } catch {
    return 'unknown';
  }
}

/** Whether the gateway knows `WORKERS`: its admin `/config_dump` then shows a `workers` field. */
async function gatewaySupportsWorkers(sinks: SinkProcess, cli: string): Promise<boolean> {
  const route: Route = {
    protocol: 'http',
    listener: 'victoriametrics',
    upstream: { host: '127.0.0.1', port: sinks.ports.http },
  };
  const gateway = await startGateway(route, { kind: 'api-key', key: 'probe-key-0123456789' }, { cli });
  try {
    const response = await fetch(`http://${gateway.admin.host}:${gateway.admin.port}/config_dump`, {
      signal: AbortSignal.timeout(5000),
    });
    const dump = (await response.json()) as Record<string, unknown>;
    const hasWorkers = (value: unknown, depth: number): boolean =>
      typeof value === 'object' &&
      value !== null &&
      ('workers' in value ||
        (depth > 0 && Object.values(value).some((child) => hasWorkers(child, depth - 1))));
    return hasWorkers(dump, 2);
  } finally {
    await gateway.stop();
  }
}

/** Workloads 8 and 9: one gateway process per store, the same named key with and without rate=. */
interface LimitContenders {
  readonly noLimit: ContenderSpec;
  readonly memory: ContenderSpec;
  readonly redis: ContenderSpec;
}

function entriesFor(
  workload: Workload,
  contenders: readonly ContenderSpec[],
  auth: {
    apiKey: AuthScheme;
    basicPlain: AuthScheme;
    basicBcrypt: AuthScheme;
    legacyKey: AuthScheme;
    scopedKey: AuthScheme;
    unlimitedKey: AuthScheme;
    limitedKey: AuthScheme;
  },
  limits: LimitContenders | null,
): Entry[] {
  if (workload.id === 'limits-tiny' || workload.id === 'limits-otlp-http') {
    if (limits === null) return [];
    return [
      {
        id: limits.noLimit.id,
        label: limits.noLimit.label,
        spec: limits.noLimit,
        auth: auth.unlimitedKey,
        variant: 'no-limit',
      },
      {
        id: limits.memory.id,
        label: limits.memory.label,
        spec: limits.memory,
        auth: auth.limitedKey,
        variant: 'memory',
      },
      {
        id: limits.redis.id,
        label: limits.redis.label,
        spec: limits.redis,
        auth: auth.limitedKey,
        variant: 'redis',
      },
    ];
  }
  if (workload.id === 'scoped') {
    // As workload 6: one process holds both keys and the rounds alternate, so that process
    // variation does not hide a per-request difference of microseconds.
    return contenders
      .filter((spec) => spec.kind === 'edge-gateway')
      .flatMap((spec) => [
        {
          id: `${spec.id}-legacy-key`,
          label: `${spec.label}, legacy key`,
          spec,
          auth: auth.legacyKey,
          variant: 'legacy' as const,
        },
        {
          id: `${spec.id}-scoped-key`,
          label: `${spec.label}, scoped key`,
          spec,
          auth: auth.scopedKey,
          variant: 'scoped' as const,
          sharesProcessOf: `${spec.id}-legacy-key`,
        },
      ]);
  }
  if (workload.id === 'bcrypt') {
    // One gateway process per WORKERS setting holds both users, and the rounds alternate between
    // them: with a process per user, the rounds' spread (±15-21 % in a full run) would swamp a
    // difference of a few microseconds per request (`npm run bench:auth`).
    return contenders
      .filter((spec) => spec.kind === 'edge-gateway')
      .flatMap((spec) => [
        {
          id: `${spec.id}-basic-plaintext`,
          label: `${spec.label}, basic plaintext`,
          spec,
          auth: auth.basicPlain,
          variant: 'plaintext' as const,
        },
        {
          id: `${spec.id}-basic-bcrypt`,
          label: `${spec.label}, basic bcrypt`,
          spec,
          auth: auth.basicBcrypt,
          variant: 'bcrypt' as const,
          sharesProcessOf: `${spec.id}-basic-plaintext`,
        },
      ]);
  }
  return contenders
    .filter((spec) => spec.protocols.includes(workload.protocol))
    .map((spec) => ({ id: spec.id, label: spec.label, spec, auth: auth.apiKey }));
}

interface EntryState {
  readonly entry: Entry;
  running: RunningContender | null;
  authCheck: EntryResult['authCheck'];
  probe: string;
  idleRssBytes: number | null;
  hwmBytes: number | null;
  rounds: RoundResult[];
  failureDetails: Set<string>;
  error?: string;
}

async function measureRound(
  workload: Workload,
  state: EntryState,
  contender: RunningContender,
  settings: Settings,
  fixtures: Fixtures,
  round: number,
  position: number,
): Promise<RoundResult> {
  const pids = contender.pid === null ? [] : processTree(contender.pid);
  const cpuBefore = pids.length > 0 ? cpuSeconds(pids) : null;
  const rssBeforeBytes = pids.length > 0 ? memory(pids).rssBytes : null;
  const sampler = pids.length > 0 ? new RssSampler(pids).start() : null;
  const sinkBefore = workload.sinkCounter === null ? null : await fixtures.sinks.counters();
  let measurement: Measurement;
  let aborted = false;
  try {
    measurement = await workload.measure(contender, settings.durationS, fixtures);
  } catch (error) {
    aborted = true;
    measurement = {
      succeeded: 0,
      failed: 1,
      seconds: settings.durationS,
      p50Ms: null,
      p99Ms: null,
      failureDetail: `load generator: ${(error as Error).message.split('\n').slice(0, 4).join(' | ')}`,
    };
  }
  const peakRssBytes = sampler?.stop() ?? null;
  const survived = contender.pid === null || processAlive(contender.pid);
  const cpuAfter = pids.length > 0 && survived ? cpuSeconds(pids) : null;
  let missingAtUpstream = 0;
  if (sinkBefore !== null && workload.sinkCounter !== null) {
    const sinkAfter = await fixtures.sinks.counters();
    const key = workload.sinkCounter === 'grpc' ? 'grpcRequests' : 'httpRequests';
    const reached = sinkAfter[key] - sinkBefore[key];
    missingAtUpstream = Math.max(0, measurement.succeeded - reached);
    const bytesKey = workload.sinkCounter === 'grpc' ? 'grpcBytes' : 'httpBytes';
    if (
      workload.id === 'stream' &&
      measurement.succeeded > 0 &&
      sinkAfter[bytesKey] - sinkBefore[bytesKey] < (measurement.bodyBytes ?? 0)
    ) {
      missingAtUpstream = measurement.succeeded;
    }
    if (missingAtUpstream > 0) {
      measurement = {
        ...measurement,
        succeeded: measurement.succeeded - missingAtUpstream,
        failed: measurement.failed + missingAtUpstream,
        failureDetail: [
          measurement.failureDetail,
          `${missingAtUpstream} successes never reached the upstream (e.g. a gRPC error in an HTTP 200)`,
        ]
          .filter(Boolean)
          .join('; '),
      };
    }
  }
  if (measurement.failureDetail !== undefined) state.failureDetails.add(measurement.failureDetail);
  return {
    round,
    position,
    measurement,
    throughput: workload.throughput(measurement),
    cpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
    rssBeforeBytes,
    peakRssBytes,
    missingAtUpstream,
    aborted,
  };
}

function medians(workload: Workload, allRounds: readonly RoundResult[]): MedianResult | null {
  const rounds = allRounds.filter((round) => !round.aborted);
  if (rounds.length === 0) return null;
  const pick = (f: (r: RoundResult) => number | null): number | null => {
    const values = rounds.map(f).filter((v): v is number => v !== null && Number.isFinite(v));
    return values.length === 0 ? null : median(values);
  };
  const max = (f: (r: RoundResult) => number | null): number | null => {
    const values = rounds.map(f).filter((v): v is number => v !== null);
    return values.length === 0 ? null : Math.max(...values);
  };
  return {
    throughput: pick((r) => r.throughput) ?? 0,
    requestsPerSecond: pick((r) => r.measurement.succeeded / r.measurement.seconds) ?? 0,
    p50Ms: pick((r) => r.measurement.p50Ms),
    p99Ms: pick((r) => r.measurement.p99Ms),
    cpuSeconds: pick((r) => {
      if (r.cpuSeconds === null) return null;
      if (workload.id === 'stream')
        return r.measurement.bodyBytes ? (r.cpuSeconds * GiB) / r.measurement.bodyBytes : null;
      const requests = r.measurement.succeeded + r.measurement.failed;
      return requests === 0 ? null : (r.cpuSeconds * 10_000) / requests;
    }),
    peakRssBytes: max((r) => r.peakRssBytes),
    rssGrowthBytes: max((r) =>
      r.peakRssBytes === null || r.rssBeforeBytes === null ? null : r.peakRssBytes - r.rssBeforeBytes,
    ),
    spreadPct: (() => {
      const values = rounds.map((r) => r.throughput);
      const middle = median(values);
      return values.length < 2 || middle === 0
        ? null
        : ((Math.max(...values) - Math.min(...values)) / middle) * 100;
    })(),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function runWorkload(
  workload: Workload,
  entries: readonly Entry[],
  settings: Settings,
  fixtures: Fixtures,
): Promise<WorkloadResult> {
  const loadAverageAtStart = loadavg()[0] ?? 0;
  progress(
    `workload ${workload.number} (${workload.id}): ${workload.title} (load average ${loadAverageAtStart.toFixed(1)})`,
  );
  const route: Route = {
    protocol: workload.protocol,
    listener: workload.listener,
    upstream: await workload.upstream(fixtures),
  };
  const states: EntryState[] = entries.map((entry) => ({
    entry,
    running: null,
    authCheck: 'n/a',
    probe: '',
    idleRssBytes: null,
    hwmBytes: null,
    rounds: [],
    failureDetails: new Set(),
  }));
  try {
    for (const state of states) {
      const ownerId = state.entry.sharesProcessOf;
      if (ownerId !== undefined) {
        const owner = states.find((other) => other.entry.id === ownerId)?.running ?? null;
        if (owner === null) {
          state.error = `did not start: ${ownerId} did not`;
          continue;
        }
        state.running = {
          target: owner.target,
          pid: owner.pid,
          authHeaders: gatewayAuthHeaders(state.entry.auth),
          output: () => owner.output(),
          stop: async () => undefined,
        };
        continue;
      }
      try {
        state.running = await state.entry.spec.start(route, state.entry.auth);
      } catch (error) {
        state.error = `did not start: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}`;
        progress(`  ${state.entry.label}: ${state.error}`);
      }
    }
    await sleep(500);
    for (const state of states) {
      const running = state.running;
      if (running === null) continue;
      if (running.pid !== null) state.idleRssBytes = memory(processTree(running.pid)).rssBytes;
      const probe = await workload.probe(running, running.authHeaders, fixtures);
      state.probe = probe.summary;
      if (!probe.ok) {
        state.error = `a single authenticated request failed: ${probe.summary}`;
        progress(`  ${state.entry.label}: ${state.error}`);
        continue;
      }
      // The relay checks nothing by design (the floor, not a proxy): only proxies are probed.
      if (state.entry.spec.kind !== 'direct' && state.entry.spec.kind !== 'tcp-relay') {
        const refused = await workload.probe(running, {}, fixtures);
        state.authCheck = refused.rejected ? 'enforced' : 'not enforced';
        if (!refused.rejected)
          progress(`  ${state.entry.label}: a request WITHOUT credentials got ${refused.summary}`);
      }
    }
    const measurable = states.filter((s) => s.running !== null && s.error === undefined);
    if (settings.warmupS > 0 && workload.id !== 'stream') {
      for (const state of measurable) {
        await workload.measure(state.running!, settings.warmupS, fixtures).catch(() => undefined);
      }
      progress(`  warmed up (${settings.warmupS} s each)`);
    }
    for (let round = 0; round < settings.rounds; round++) {
      for (let position = 0; position < measurable.length; position++) {
        const state = measurable[(round + position) % measurable.length]!;
        if (state.error !== undefined) continue;
        const result = await measureRound(
          workload,
          state,
          state.running!,
          settings,
          fixtures,
          round + 1,
          position + 1,
        );
        state.rounds.push(result);
        const { pid } = state.running!;
        if (pid !== null && !processAlive(pid)) {
          const tail = state.running!.output().trim().split('\n').slice(-12).join('\n');
          state.error = `the process exited during round ${round + 1}; its last output:\n${tail}`;
          progress(`  ${state.entry.label}: ${state.error}`);
        }
        const m = result.measurement;
        const latency =
          m.p99Ms === null
            ? `${fmt(m.seconds, 2)} s`
            : `p50 ${fmt(m.p50Ms ?? 0, 2)} ms p99 ${fmt(m.p99Ms, 2)} ms`;
        const cpu = result.cpuSeconds === null ? '' : `, cpu ${fmt(result.cpuSeconds, 2)} s`;
        progress(
          `  round ${round + 1}/${settings.rounds} ${state.entry.label.padEnd(34)} ${fmt(result.throughput).padStart(10)} ${workload.unit}  ${latency}${cpu}, ${m.failed} failed`,
        );
      }
    }
    for (const state of measurable) {
      if (state.running?.pid != null) state.hwmBytes = memory(processTree(state.running.pid)).hwmBytes;
    }
  } finally {
    await Promise.all(states.map((state) => state.running?.stop().catch(() => undefined)));
  }
  return {
    id: workload.id,
    number: workload.number,
    title: workload.title,
    unit: workload.unit,
    loadAverageAtStart,
    load:
      workload.id === 'stream'
        ? `${workload.load}, ${settings.streamBytes / (1024 * 1024)} MiB`
        : workload.load,
    entries: states.map((state): EntryResult => {
      const failures = state.rounds.reduce((sum, r) => sum + r.measurement.failed, 0);
      return {
        id: state.entry.id,
        label: state.entry.label,
        kind: state.entry.spec.kind,
        ...(state.entry.variant === undefined ? {} : { variant: state.entry.variant }),
        ...(state.entry.sharesProcessOf === undefined
          ? {}
          : { sharesProcessOf: state.entry.sharesProcessOf }),
        authCheck: state.authCheck,
        probe: state.probe,
        idleRssBytes: state.idleRssBytes,
        hwmBytes: state.hwmBytes,
        rounds: state.rounds,
        median: medians(workload, state.rounds),
        failures,
        failureDetails: [...state.failureDetails],
        flagged: failures > 0 || state.error !== undefined || state.authCheck === 'not enforced',
        ...(state.error === undefined ? {} : { error: state.error }),
      };
    }),
  };
}

function estimateSeconds(settings: Settings, entryCounts: Map<string, number>): number {
  let total = 0;
  for (const [id, count] of entryCounts) {
    if (id === 'stream')
      total += count * settings.rounds * Math.max(1, settings.streamBytes / (400 * 1024 * 1024)) + count;
    else total += count * (settings.warmupS + settings.rounds * (settings.durationS + 0.3)) + count;
  }
  return Math.round(total);
}

async function main(): Promise<void> {
  installTreeCleanup();
  const settings = parseSettings(process.argv.slice(2));
  if (settings.help) {
    process.stdout.write(USAGE);
    return;
  }
  let gatewayCli = settings.gatewayCli;
  let gatewayVersion = gitDescription();
  if (settings.gatewayCommit !== null) {
    progress(`building the gateway of ${settings.gatewayCommit}`);
    const snapshot = await buildGatewaySnapshot(REPO_ROOT, settings.gatewayCommit);
    gatewayCli = snapshot.cli;
    gatewayVersion = `${snapshot.commit.slice(0, 12)} (--gateway-commit ${settings.gatewayCommit})`;
  } else if (settings.gatewayCli !== DEFAULT_GATEWAY_CLI) {
    gatewayVersion = `${settings.gatewayCli} (--gateway-cli; checkout at ${gatewayVersion})`;
  }
  if (!existsSync(gatewayCli)) throw new Error(`${gatewayCli} is missing: run \`npm run build\` first`);
  for (const [command, pkg] of [
    ['wrk', 'wrk'],
    ['h2load', 'nghttp2-client'],
  ] as const) {
    if (!commandExists(command)) throw new Error(`${command} is missing: apt-get install ${pkg}`);
  }
  const startedAt = new Date();
  const scratchDir = await mkdtemp(join(tmpdir(), 'edge-gateway-bench-'));
  trackTempDir(scratchDir);

  const message = await exportTraceRequest();
  const grpcBody = grpcFrame(message);
  const grpcBodyFile = join(scratchDir, 'export-trace.grpc');
  const protobufBodyFile = join(scratchDir, 'export-trace.pb');
  await writeFile(grpcBodyFile, grpcBody);
  await writeFile(protobufBodyFile, message);
  progress(`OTLP batch: 512 spans, ${fmt(message.length)} bytes of protobuf`);

  const sinks = await startSinkProcess();
  let redis: RunningRedis | null = null;
  let victoriaMetrics: Promise<VictoriaMetricsService> | undefined;
  const fixtures: Fixtures = {
    grpcBody,
    grpcBodyFile,
    protobufBody: message,
    protobufBodyFile,
    sinks,
    scratchDir,
    streamBytes: settings.streamBytes,
    victoriaMetrics: async () => {
      if (victoriaMetrics === undefined) {
        progress('starting VictoriaMetrics and importing 3000 series');
        victoriaMetrics = startSeededVictoriaMetrics();
      }
      const vm = await victoriaMetrics;
      return { host: '127.0.0.1', port: vm.port };
    },
  };

  try {
    const gatewayFlags = [
      ...settings.gatewayNodeFlags,
      ...(settings.cpuProfDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${settings.cpuProfDir}`]),
    ];
    const notes: string[] = [];
    const gatewayOptions = { nodeFlags: gatewayFlags, cli: gatewayCli };
    // The TCP relay runs in every table: how far each contender is from the runtime's floor.
    const all: ContenderSpec[] = [directContender, tcpRelayContender];
    if (await gatewaySupportsWorkers(sinks, gatewayCli)) {
      // WORKERS defaults to one per core: say 1 explicitly for the single-process contender.
      all.push(
        gatewayContender('edge-gateway', 'edge-gateway (WORKERS=1)', { ...gatewayOptions, workers: 1 }),
        gatewayContender('edge-gateway-w2', 'edge-gateway (WORKERS=2)', { ...gatewayOptions, workers: 2 }),
      );
    } else {
      all.push(gatewayContender('edge-gateway', 'edge-gateway', gatewayOptions));
      notes.push(
        'edge-gateway has no `workers` in its /config_dump yet: only the single-process gateway (WORKERS=1) ran.',
      );
    }
    if (existsSync(NGINX_BINARY)) all.push(nginxContender);
    else notes.push(`${NGINX_BINARY} is missing (apt-get install nginx-light): no nginx contender.`);
    if (existsSync(VMAUTH_BINARY)) all.push(vmauthContender);
    else notes.push(`${VMAUTH_BINARY} is missing (apt-get install victoria-metrics): no vmauth contender.`);
    if (settings.workloads.some((id) => ['promql', 'tiny', 'bcrypt', 'scoped', 'limits-tiny'].includes(id))) {
      requireExecutable('/usr/bin/victoria-metrics', 'victoria-metrics');
    }
    // A reference point, not one of the issue's contenders: only when asked for by name.
    if (settings.contenders?.includes(nodeMinimalContender.id)) all.push(nodeMinimalContender);
    if (settings.contenders?.includes(h1LlhttpRelayContender.id)) all.push(h1LlhttpRelayContender);
    if (settings.contenders?.includes(h1NodeServerContender.id)) all.push(h1NodeServerContender);
    if (settings.contenders?.includes(h2FrameRelayContender.id)) all.push(h2FrameRelayContender);
    const contenders =
      settings.contenders === null ? all : all.filter((spec) => settings.contenders!.includes(spec.id));
    if (contenders.length === 0)
      throw new Error(`--contenders matched none of ${all.map((s) => s.id).join(', ')}`);

    const key = `bench-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
    const password = `pw-${Math.random().toString(36).slice(2)}`;
    const bcryptHash = await bcrypt.hash(password, 10);
    const auth = {
      apiKey: { kind: 'api-key', key } as const,
      basicPlain: {
        kind: 'basic',
        user: 'bench-plain',
        password,
        stored: { kind: 'plain' },
        alsoConfigured: [{ user: 'bench-bcrypt', stored: { kind: 'bcrypt', hash: bcryptHash } }],
      } as const,
      basicBcrypt: {
        kind: 'basic',
        user: 'bench-bcrypt',
        password,
        stored: { kind: 'bcrypt', hash: bcryptHash },
      } as const,
      legacyKey: {
        kind: 'api-key',
        key,
        alsoNamed: [{ name: 'bench-scoped', key: `${key}-scoped` }],
      } as const,
      scopedKey: { kind: 'api-key', key: `${key}-scoped`, named: 'bench-scoped' } as const,
      unlimitedKey: { kind: 'api-key', key, named: 'bench-limits', namedOptions: 'scopes=all' } as const,
      limitedKey: {
        kind: 'api-key',
        key,
        named: 'bench-limits',
        namedOptions: `scopes=all; rate=${UNREACHED_RATE}`,
      } as const,
    };
    const limitWorkloads = settings.workloads.some((id) => id === 'limits-tiny' || id === 'limits-otlp-http');
    // A gateway is a contender here only if it runs at all: --contenders edge-gateway or none.
    const gatewayChosen = settings.contenders === null || settings.contenders.includes('edge-gateway');
    if (limitWorkloads && gatewayChosen) {
      progress('starting redis-server for LIMIT_STORE=redis');
      redis = await startRedis();
    }
    const limits: LimitContenders | null =
      redis === null
        ? null
        : {
            noLimit: gatewayContender('edge-gateway-no-limit', 'edge-gateway, no limit', {
              ...gatewayOptions,
              workers: 1,
            }),
            memory: gatewayContender('edge-gateway-limit-memory', 'edge-gateway, rate=, LIMIT_STORE=memory', {
              ...gatewayOptions,
              workers: 1,
              limitStore: 'memory',
            }),
            redis: gatewayContender('edge-gateway-limit-redis', 'edge-gateway, rate=, LIMIT_STORE=redis', {
              ...gatewayOptions,
              workers: 1,
              limitStore: redis.url,
            }),
          };
    const workloads = WORKLOADS.filter((w) => settings.workloads.includes(w.id));
    const plan = new Map(workloads.map((w) => [w.id, entriesFor(w, contenders, auth, limits)]));
    const estimate = estimateSeconds(
      settings,
      new Map([...plan].map(([id, entries]) => [id, entries.length])),
    );
    progress(
      `contenders: ${contenders.map((c) => c.label).join(', ')}; ${settings.rounds} round(s) × ${settings.durationS} s; estimated ${Math.ceil(estimate / 60)} min`,
    );

    const results: WorkloadResult[] = [];
    for (const workload of workloads) {
      const entries = plan.get(workload.id) ?? [];
      if (entries.length === 0) continue;
      results.push(await runWorkload(workload, entries, settings, fixtures));
    }

    notes.push(
      'The tiny request is `GET /api/v1/status/buildinfo`, not `/health`: vmauth answers `/health` itself, without authentication and without reaching VictoriaMetrics.',
      `nginx runs \`worker_processes auto\` (${cpus().length} workers here) and vmauth uses every core (Go); edge-gateway WORKERS=1 is one Node.js process.`,
      'Every proxy runs without per-request access logs (edge-gateway ACCESS_LOG=off, nginx access_log off).',
    );
    const finishedAt = new Date();
    const result: BenchResult = {
      meta: {
        command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        elapsedS: (finishedAt.getTime() - startedAt.getTime()) / 1000,
        quick: settings.quick,
        rounds: settings.rounds,
        durationS: settings.durationS,
        warmupS: settings.warmupS,
        streamBytes: settings.streamBytes,
        gateway: gatewayVersion,
        node: process.version,
        cpus: cpus().length,
        kernel: release(),
        tools: toolVersions(),
        notes,
      },
      workloads: results,
      targets: evaluateTargets(results),
    };
    await mkdir(settings.outDir, { recursive: true });
    const suffix = settings.outName === 'latest' ? '' : '.tmp';
    const mdFile = join(settings.outDir, `${settings.outName}.md${suffix}`);
    const jsonFile = join(settings.outDir, `${settings.outName}.json${suffix}`);
    await writeFile(mdFile, renderMarkdown(result));
    await writeFile(jsonFile, `${JSON.stringify(result, null, 2)}\n`);
    progress(`wrote ${mdFile} and ${jsonFile}`);
    for (const target of result.targets) {
      progress(
        `  target ${target.status.padEnd(4)} ${target.workload} ${target.contender}: ${target.target} — ${target.measured}`,
      );
    }
  } finally {
    await sinks.stop();
    await redis?.stop();
    if (victoriaMetrics !== undefined) await (await victoriaMetrics.catch(() => null))?.stop();
    await removeTempDir(scratchDir);
  }
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
