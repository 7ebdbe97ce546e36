import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { WORKLOAD_IDS, type WorkloadId } from './types.js';

export interface Settings {
  readonly quick: boolean;
  readonly workloads: readonly WorkloadId[];
  /** Contender ids to run (null: all that apply). */
  readonly contenders: readonly string[] | null;
  readonly rounds: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly streamBytes: number;
  /** Directory for `latest.md` and `latest.json`. */
  readonly outDir: string;
  /** Base name of the written files: `latest` for a full run, `partial` (git-ignored *.tmp) otherwise. */
  readonly outName: 'latest' | 'partial';
  readonly cpuProfDir: string | null;
  /** Node options the gateway runs with (`--gateway-node-flag`, repeatable): for A/B runs of V8 settings. */
  readonly gatewayNodeFlags: readonly string[];
  /** The gateway's `cli.js`: this checkout's `dist/cli.js` unless `--gateway-cli` says otherwise. */
  readonly gatewayCli: string;
  /** Build and run the gateway of this git revision instead (`--gateway-commit`). */
  readonly gatewayCommit: string | null;
  readonly help: boolean;
}

export const USAGE = `Usage: node --import tsx bench/run.ts [options]   (npm run bench)

Runs the six workloads of issue 5 against direct, edge-gateway, nginx and vmauth on 127.0.0.1
and writes bench/results/latest.md and latest.json (a run restricted by any option below writes
bench/results/partial.md.tmp and partial.json.tmp instead, unless --out is given).

  --quick               smoke mode: 1 round of 1 s, no warm-up, 16 MiB stream (seconds per workload)
  --only <ids>          only these workloads (comma-separated, repeatable):
                        ${WORKLOAD_IDS.join(', ')}
  --contenders <ids>    only these contenders: direct, edge-gateway, edge-gateway-w2, nginx, vmauth,
                        tcp-relay (bench/tcp-relay.ts: bytes socket to socket, the floor; in every run),
                        and node-minimal (bench/node-minimal-proxy.ts, a reference run only when named)
  --rounds <n>          interleaved rounds per workload (default 3)
  --duration <s>        seconds per measured run (default 5)
  --warmup <s>          seconds of warm-up per contender and workload (default 1; 0 = none)
  --stream-mib <n>      size of the streaming body in MiB (default 1024)
  --out <dir>           write <dir>/latest.md and <dir>/latest.json
  --cpu-prof <dir>      run the gateway with node --cpu-prof, profiles written to <dir>
  --gateway-node-flag <flag>  a Node option for the gateway's process (repeatable), e.g.
                        --gateway-node-flag=--max-semi-space-size=32
  --gateway-cli <file>  the gateway to run (default dist/cli.js)
  --gateway-commit <rev>  build the gateway of this git revision (e.g. HEAD) into a temp dir and
                        run that: immune to concurrent edits of src/ and rebuilds of dist/
  -h, --help            this text
`;

const DEFAULT_OUT_DIR = new URL('./results/', import.meta.url).pathname;
export const DEFAULT_GATEWAY_CLI = new URL('../dist/cli.js', import.meta.url).pathname;

function positive(name: string, text: string | undefined, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new Error(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got "${text}"`);
  }
  return value;
}

function list(values: string[] | undefined): string[] | null {
  if (values === undefined) return null;
  return values
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');
}

export function parseSettings(argv: readonly string[]): Settings {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      contenders: { type: 'string', multiple: true },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'stream-mib': { type: 'string' },
      out: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'gateway-cli': { type: 'string' },
      'gateway-node-flag': { type: 'string', multiple: true },
      'gateway-commit': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  const quick = values.quick === true;
  const only = list(values.only);
  for (const id of only ?? []) {
    if (!WORKLOAD_IDS.includes(id as WorkloadId)) {
      throw new Error(`--only: unknown workload "${id}" (known: ${WORKLOAD_IDS.join(', ')})`);
    }
  }
  const contenders = list(values.contenders);
  if (values['gateway-cli'] !== undefined && values['gateway-commit'] !== undefined) {
    throw new Error('--gateway-cli and --gateway-commit exclude each other');
  }
  const partial =
    quick ||
    only !== null ||
    contenders !== null ||
    values['gateway-node-flag'] !== undefined ||
    [values.rounds, values.duration, values.warmup, values['stream-mib']].some((v) => v !== undefined);
  return {
    quick,
    workloads: only === null ? WORKLOAD_IDS : WORKLOAD_IDS.filter((id) => only.includes(id)),
    contenders,
    rounds: Math.round(positive('rounds', values.rounds, quick ? 1 : 3)),
    durationS: Math.round(positive('duration', values.duration, quick ? 1 : 5)),
    warmupS: Math.round(positive('warmup', values.warmup, quick ? 0 : 1, true)),
    streamBytes: Math.round(positive('stream-mib', values['stream-mib'], quick ? 16 : 1024) * 1024 * 1024),
    outDir: values.out ?? DEFAULT_OUT_DIR,
    outName: values.out !== undefined || !partial ? 'latest' : 'partial',
    cpuProfDir: values['cpu-prof'] ?? null,
    gatewayNodeFlags: values['gateway-node-flag'] ?? [],
    gatewayCli: resolve(values['gateway-cli'] ?? DEFAULT_GATEWAY_CLI),
    gatewayCommit: values['gateway-commit'] ?? null,
    help: values.help === true,
  };
}
