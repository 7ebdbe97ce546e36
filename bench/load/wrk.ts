import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../children.js';
import type { Measurement } from '../types.js';

export interface WrkOptions {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  /** File whose bytes are every request's body. */
  readonly bodyFile?: string;
  readonly threads: number;
  readonly connections: number;
  readonly durationS: number;
  /** Where the generated Lua script is written. */
  readonly scratchDir: string;
}

interface WrkSummary {
  requests: number;
  durationUs: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
  p50Us: number;
  p99Us: number;
}

/** A Lua string literal; our values are printable ASCII, which is all this has to handle. */
function luaString(value: string): string {
  if (!/^[\x20-\x7e]*$/.test(value)) throw new Error(`not printable ASCII: ${JSON.stringify(value)}`);
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * The wrk script: method, headers and body set once, and a `done` hook that prints one JSON
 * line, so nothing depends on wrk's human-readable output.
 */
export function wrkScript(options: Pick<WrkOptions, 'method' | 'headers' | 'bodyFile'>): string {
  const lines = [`wrk.method = ${luaString(options.method)}`];
  for (const [name, value] of Object.entries(options.headers)) {
    lines.push(`wrk.headers[${luaString(name)}] = ${luaString(value)}`);
  }
  if (options.bodyFile !== undefined) {
    lines.push(
      `local body_file = assert(io.open(${luaString(options.bodyFile)}, "rb"))`,
      'wrk.body = body_file:read("*a")',
      'body_file:close()',
    );
  }
  lines.push(
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'WRK_JSON {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d}\\n\',',
    '    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,',
    '    latency:percentile(50), latency:percentile(99)))',
    'end',
  );
  return `${lines.join('\n')}\n`;
}

let scriptCounter = 0;

/** One timed wrk run (HTTP/1.1, keep-alive). Socket errors, timeouts and status >= 400 count as failed. */
export async function runWrk(options: WrkOptions): Promise<Measurement> {
  const script = join(options.scratchDir, `wrk-${process.pid}-${scriptCounter++}.lua`);
  await writeFile(script, wrkScript(options));
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${Math.max(1, Math.round(options.durationS))}s`,
    '--timeout',
    '10s',
    '-s',
    script,
    options.url,
  ];
  const run = await runTool('wrk', args, (options.durationS + 30) * 1000);
  const match = /WRK_JSON (\{.*\})/.exec(run.output);
  if (match === null) {
    throw new Error(
      `wrk ${args.join(' ')} printed no summary (exit ${run.code}${run.timedOut ? ', killed after timeout' : ''}):\n${run.output}`,
    );
  }
  const summary = JSON.parse(match[1]!) as WrkSummary;
  const socketErrors = summary.connect + summary.read + summary.write + summary.timeout;
  const succeeded = Math.max(0, summary.requests - summary.status);
  const failed = summary.status + socketErrors;
  const detail: string[] = [];
  if (summary.status > 0) detail.push(`${summary.status} HTTP status >= 400`);
  if (summary.connect > 0) detail.push(`${summary.connect} connect errors`);
  if (summary.read + summary.write > 0) detail.push(`${summary.read + summary.write} read/write errors`);
  if (summary.timeout > 0) detail.push(`${summary.timeout} timeouts`);
  return {
    succeeded,
    failed,
    seconds: summary.durationUs / 1e6,
    p50Ms: summary.p50Us / 1000,
    p99Ms: summary.p99Us / 1000,
    ...(detail.length > 0 ? { failureDetail: `wrk: ${detail.join(', ')}` } : {}),
  };
}
