import { median } from './stats.js';
import type { ContenderSpec, Measurement, WorkloadId } from './types.js';

/** Everything one run of the harness measured: what `latest.json` holds. */
export interface BenchResult {
  readonly meta: BenchMeta;
  readonly workloads: WorkloadResult[];
  readonly targets: TargetResult[];
}

export interface BenchMeta {
  readonly command: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly elapsedS: number;
  readonly quick: boolean;
  readonly rounds: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly streamBytes: number;
  /** Which gateway ran: the checkout's commit (noting uncommitted src/ changes), or the built commit. */
  readonly gateway: string;
  readonly node: string;
  readonly cpus: number;
  readonly kernel: string;
  readonly tools: Readonly<Record<string, string>>;
  readonly notes: readonly string[];
}

export interface RoundResult {
  readonly round: number;
  /** Position within the round (contenders rotate so none always goes first). */
  readonly position: number;
  readonly measurement: Measurement;
  readonly throughput: number;
  /** CPU seconds the contender's processes used during the run (null for direct). */
  readonly cpuSeconds: number | null;
  readonly rssBeforeBytes: number | null;
  readonly peakRssBytes: number | null;
  /** Successes the load generator saw that never reached the upstream (counted as failed). */
  readonly missingAtUpstream: number;
  /** The load generator could not run at all (e.g. the contender was down): left out of the medians. */
  readonly aborted: boolean;
}

export interface EntryResult {
  readonly id: string;
  readonly label: string;
  readonly kind: ContenderSpec['kind'];
  /** Workload 6: how the gateway stores the password; 7: which key; 8 and 9: which limit store. */
  readonly variant?: 'plaintext' | 'bcrypt' | 'legacy' | 'scoped' | 'no-limit' | 'memory' | 'redis';
  /** For workload 6: the entry whose gateway process this one's load went to (both users configured there). */
  readonly sharesProcessOf?: string;
  /** `enforced` when a request without credentials was refused. */
  readonly authCheck: 'enforced' | 'not enforced' | 'n/a';
  readonly probe: string;
  readonly idleRssBytes: number | null;
  /** Highest VmHWM (summed over the processes) at the end of the workload. */
  readonly hwmBytes: number | null;
  readonly rounds: RoundResult[];
  readonly median: MedianResult | null;
  readonly failures: number;
  readonly failureDetails: string[];
  /** Set when the contender failed requests, did not start, or did not enforce auth. */
  readonly flagged: boolean;
  readonly error?: string;
}

export interface MedianResult {
  readonly throughput: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** CPU seconds per 10 000 requests (per GiB for the streaming workload). */
  readonly cpuSeconds: number | null;
  readonly peakRssBytes: number | null;
  /** Largest growth of the resident set over a round (streaming workload). */
  readonly rssGrowthBytes: number | null;
  /** (max − min) / median of the rounds' throughput, in percent: how far the rounds disagree. */
  readonly spreadPct: number | null;
}

export interface WorkloadResult {
  readonly id: WorkloadId;
  readonly number: number;
  readonly title: string;
  readonly unit: string;
  readonly load: string;
  readonly entries: EntryResult[];
  /** 1-minute load average of the machine when the workload started (other work shows here). */
  readonly loadAverageAtStart: number;
}

export interface TargetResult {
  readonly workload: WorkloadId;
  readonly contender: string;
  readonly target: string;
  readonly measured: string;
  readonly status: 'PASS' | 'FAIL' | 'n/a';
}

const MiB = 1024 * 1024;

function entry(
  workload: WorkloadResult | undefined,
  predicate: (e: EntryResult) => boolean,
): EntryResult | undefined {
  return workload?.entries.find((e) => predicate(e) && e.median !== null);
}

const fmtRatio = (value: number): string => `${value.toFixed(2)}×`;

/** The targets of issue 5, judged for every gateway variant on the numbers of this run. */
export function evaluateTargets(workloads: readonly WorkloadResult[]): TargetResult[] {
  const targets: TargetResult[] = [];
  const byId = new Map(workloads.map((w) => [w.id, w]));
  const judge = (
    workload: WorkloadId,
    contender: EntryResult,
    target: string,
    reference: EntryResult | undefined,
    compute: (gateway: MedianResult, reference: MedianResult) => { measured: string; pass: boolean },
  ): void => {
    if (reference?.median == null || contender.median === null) {
      targets.push({
        workload,
        contender: contender.label,
        target,
        measured: 'reference missing',
        status: 'n/a',
      });
      return;
    }
    const { measured, pass } = compute(contender.median, reference.median);
    const failed = contender.failures > 0 ? ` (gateway failed ${contender.failures} requests)` : '';
    const refFailed =
      reference.failures > 0 ? ` (${reference.label} failed ${reference.failures} requests)` : '';
    targets.push({
      workload,
      contender: contender.label,
      target,
      measured: `${measured}${failed}${refFailed}`,
      status: pass && contender.failures === 0 ? 'PASS' : 'FAIL',
    });
  };
  const gateways = (id: WorkloadId): EntryResult[] =>
    byId.get(id)?.entries.filter((e) => e.kind === 'edge-gateway' && e.median !== null) ?? [];
  const ratio = (min: number) => (g: MedianResult, r: MedianResult) => ({
    measured: fmtRatio(g.throughput / r.throughput),
    pass: g.throughput >= min * r.throughput,
  });

  for (const id of ['otlp-grpc', 'otlp-http'] as const) {
    const w = byId.get(id);
    for (const g of gateways(id)) {
      judge(
        id,
        g,
        '≥ 0.90 × direct',
        entry(w, (e) => e.kind === 'direct'),
        ratio(0.9),
      );
      judge(
        id,
        g,
        'ahead of nginx',
        entry(w, (e) => e.kind === 'nginx'),
        (gm, nm) => ({
          measured: `${fmtRatio(gm.throughput / nm.throughput)} nginx`,
          pass: gm.throughput > nm.throughput,
        }),
      );
    }
  }
  for (const g of gateways('promql')) {
    judge(
      'promql',
      g,
      '≥ 0.95 × direct',
      entry(byId.get('promql'), (e) => e.kind === 'direct'),
      ratio(0.95),
    );
  }
  for (const g of gateways('tiny')) {
    const vmauth = entry(byId.get('tiny'), (e) => e.kind === 'vmauth');
    judge('tiny', g, '≥ 1.0 × vmauth req/s', vmauth, ratio(1.0));
    judge('tiny', g, 'p99 ≤ vmauth p99 + 1 ms', vmauth, (gm, vm) => ({
      measured: `${gm.p99Ms?.toFixed(2)} ms vs ${vm.p99Ms?.toFixed(2)} ms`,
      pass: gm.p99Ms !== null && vm.p99Ms !== null && gm.p99Ms <= vm.p99Ms + 1,
    }));
  }
  for (const g of gateways('stream')) {
    const growth = g.median?.rssGrowthBytes;
    targets.push({
      workload: 'stream',
      contender: g.label,
      target: 'RSS growth ≤ 64 MiB for the whole body',
      measured: growth == null ? 'not measured' : `${(growth / MiB).toFixed(1)} MiB`,
      status: growth == null ? 'n/a' : growth <= 64 * MiB && g.failures === 0 ? 'PASS' : 'FAIL',
    });
    judge(
      'stream',
      g,
      '≥ 0.90 × direct MiB/s',
      entry(byId.get('stream'), (e) => e.kind === 'direct'),
      ratio(0.9),
    );
  }
  const bcrypt = byId.get('bcrypt');
  for (const g of bcrypt?.entries.filter((e) => e.variant === 'bcrypt' && e.median !== null) ?? []) {
    const plain = entry(
      bcrypt,
      (e) => e.variant === 'plaintext' && e.label.replace('plaintext', 'bcrypt') === g.label,
    );
    judge('bcrypt', g, '≥ 0.95 × plaintext req/s', plain, ratio(0.95));
  }
  const scoped = byId.get('scoped');
  for (const g of scoped?.entries.filter((e) => e.variant === 'scoped' && e.median !== null) ?? []) {
    const legacy = entry(
      scoped,
      (e) => e.variant === 'legacy' && e.label.replace('legacy key', 'scoped key') === g.label,
    );
    judge('scoped', g, '≥ 0.97 × legacy key req/s (issue 12: costs ≤ 3 %)', legacy, ratio(0.97));
  }
  // Issue 14: a rate= not reached costs ≤ 3 % with the memory store, ≤ 10 % with Redis.
  for (const id of ['limits-tiny', 'limits-otlp-http'] as const) {
    const w = byId.get(id);
    const noLimit = entry(w, (e) => e.variant === 'no-limit');
    for (const g of w?.entries.filter((e) => e.variant === 'memory' || e.variant === 'redis') ?? []) {
      const min = g.variant === 'memory' ? 0.97 : 0.9;
      judge(id, g, `≥ ${min.toFixed(2)} × no limit ${w?.unit ?? ''}`, noLimit, ratio(min));
    }
  }
  return targets;
}

const num = (value: number | null | undefined, digits = 0): string =>
  value == null || !Number.isFinite(value)
    ? '–'
    : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mib = (bytes: number | null | undefined): string => (bytes == null ? '–' : num(bytes / MiB, 1));

function ratioCell(e: EntryResult, reference: EntryResult | undefined): string {
  if (e.median === null || reference?.median == null || reference === e) return '';
  return fmtRatio(e.median.throughput / reference.median.throughput);
}

function workloadTable(w: WorkloadResult): string[] {
  const direct = entry(w, (e) => e.kind === 'direct');
  const nginx = entry(w, (e) => e.kind === 'nginx');
  const vmauth = entry(w, (e) => e.kind === 'vmauth');
  const nodeMinimal = entry(w, (e) => e.kind === 'node-minimal');
  const relay = entry(w, (e) => e.kind === 'tcp-relay');
  const plaintext = (e: EntryResult) =>
    entry(w, (p) => p.variant === 'plaintext' && p.label === e.label.replace('bcrypt', 'plaintext'));
  const stream = w.id === 'stream';
  const lines: string[] = [];
  const refs: [string, (e: EntryResult) => EntryResult | undefined][] = [];
  if (direct) refs.push(['vs direct', () => direct]);
  if (nginx) refs.push(['vs nginx', () => nginx]);
  if (vmauth) refs.push(['vs vmauth', () => vmauth]);
  if (nodeMinimal) refs.push(['vs minimal Node', () => nodeMinimal]);
  if (relay) refs.push(['vs TCP relay', () => relay]);
  if (w.id === 'bcrypt') refs.push(['vs plaintext', plaintext]);
  if (w.id === 'scoped')
    refs.push([
      'vs legacy key',
      (e) =>
        entry(w, (p) => p.variant === 'legacy' && p.label === e.label.replace('scoped key', 'legacy key')),
    ]);
  if (w.id === 'limits-tiny' || w.id === 'limits-otlp-http')
    refs.push(['vs no limit', () => entry(w, (p) => p.variant === 'no-limit')]);
  const head = stream
    ? [
        'contender',
        w.unit,
        'spread',
        'seconds',
        'failed',
        'CPU s/GiB',
        'idle RSS MiB',
        'peak RSS MiB',
        'RSS growth MiB',
      ]
    : [
        'contender',
        w.unit,
        'spread',
        ...(w.unit === 'req/s' ? [] : ['req/s']),
        'p50 ms',
        'p99 ms',
        'failed',
        'CPU s/10k req',
        'idle RSS MiB',
        'peak RSS MiB',
      ];
  head.push(...refs.map(([name]) => name));
  lines.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
  for (const e of w.entries) {
    const m = e.median;
    const label = `${e.label}${e.flagged ? ' ⚠' : ''}`;
    const cells = stream
      ? [
          label,
          num(m?.throughput, 0),
          m?.spreadPct == null ? '–' : `±${num(m.spreadPct / 2, 0)}%`,
          num(m === null ? null : median(e.rounds.map((r) => r.measurement.seconds)), 2),
          num(e.failures),
          num(m?.cpuSeconds, 2),
          mib(e.idleRssBytes),
          mib(m?.peakRssBytes),
          mib(m?.rssGrowthBytes),
        ]
      : [
          label,
          num(m?.throughput, 0),
          m?.spreadPct == null ? '–' : `±${num(m.spreadPct / 2, 0)}%`,
          ...(w.unit === 'req/s' ? [] : [num(m?.requestsPerSecond, 0)]),
          num(m?.p50Ms, 2),
          num(m?.p99Ms, 2),
          num(e.failures),
          num(m?.cpuSeconds, 2),
          mib(e.idleRssBytes),
          mib(m?.peakRssBytes),
        ];
    cells.push(...refs.map(([, ref]) => ratioCell(e, ref(e))));
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines;
}

/** A list item whose text may span lines (a crashed process's output): the rest goes in a code block. */
function listItem(label: string, text: string): string {
  const [first = '', ...rest] = text.trimEnd().split('\n');
  if (rest.length === 0) return `- **${label}**: ${first}`;
  return [`- **${label}**: ${first}`, '', '  ```text', ...rest.map((line) => `  ${line}`), '  ```'].join(
    '\n',
  );
}

/** `latest.md`: the tables a person reads, then the targets, then how the run was made. */
export function renderMarkdown(result: BenchResult): string {
  const { meta } = result;
  const out: string[] = [
    '# edge-gateway benchmark',
    '',
    `Command: \`${meta.command}\`  `,
    `Run: ${meta.startedAt} → ${meta.finishedAt} (${Math.round(meta.elapsedS)} s), edge-gateway ${meta.gateway}  `,
    `Machine: ${meta.cpus} CPUs, Linux ${meta.kernel}, Node ${meta.node}; ${Object.entries(meta.tools)
      .map(([tool, version]) => `${tool} ${version}`)
      .join(', ')}  `,
    `Method: ${meta.rounds} interleaved round(s) of ${meta.durationS} s per contender and workload (order rotated each round) after a ${meta.warmupS} s warm-up; medians of the rounds. Streaming: ${(meta.streamBytes / MiB).toFixed(0)} MiB per round. Everything on 127.0.0.1, client and servers sharing the same ${meta.cpus} cores.`,
    '',
  ];
  if (meta.quick) out.push('**Quick smoke run: durations too short for the numbers to mean anything.**', '');
  for (const w of result.workloads) {
    out.push(
      `## ${w.number}. ${w.title}`,
      '',
      `Load: ${w.load}. Machine load average when it started: ${w.loadAverageAtStart.toFixed(1)}.`,
      '',
      ...workloadTable(w),
      '',
    );
    const notes: string[] = [];
    for (const e of w.entries) {
      if (e.error !== undefined) notes.push(listItem(e.label, e.error));
      if (e.authCheck === 'not enforced')
        notes.push(`- **${e.label}**: a request without credentials was NOT refused.`);
      if (e.failures > 0)
        notes.push(listItem(e.label, `failed ${e.failures} requests: ${e.failureDetails.join('; ')}`));
    }
    if (notes.length > 0) out.push('⚠ flagged:', '', ...notes, '');
  }
  out.push(
    '## Targets (issue 5)',
    '',
    '| workload | contender | target | measured | result |',
    '| --- | --- | --- | --- | --- |',
  );
  for (const t of result.targets) {
    out.push(
      `| ${t.workload} | ${t.contender} | ${t.target} | ${t.measured} | ${t.status === 'PASS' ? 'PASS' : t.status === 'FAIL' ? '**FAIL**' : 'n/a'} |`,
    );
  }
  out.push(
    '',
    '## Reading the tables',
    '',
    '- Throughput is the median over the completed rounds of successful requests (2xx, and for the sinks: received by the upstream) per second; `failed` sums all rounds.',
    "- CPU s/10k req: user+system CPU seconds of the contender's processes (all of them: nginx master and workers) per 10 000 requests, from /proc/<pid>/stat. For the streaming workload, CPU seconds per GiB.",
    '- idle RSS: resident memory after start-up, before any request. Peak RSS: highest resident memory sampled every 100 ms during the rounds. RSS growth: peak during a round minus RSS just before it (largest round).',
    "- spread: half the range of the rounds' throughput, around the median. A ratio between two contenders means little when it lies within their spreads. The load average shown at a workload's start still carries the previous workload's own load; values far above the 2 cores mean other work shared them.",
    "- Ratios compare throughput with the same workload's other contenders in this run.",
    ...meta.notes.map((note) => `- ${note}`),
    '',
  );
  return out.join('\n');
}
