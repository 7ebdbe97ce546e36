import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { spawnTracked } from './processes.js';

const processesModule = new URL('./processes.ts', import.meta.url).href;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function eventuallyDead(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return !isAlive(pid);
}

/** Runs a test process that starts `sleep 60` through spawnTracked and then ends by `ending`. */
async function orphanAfter(ending: string): Promise<number> {
  const script = `
    import { spawnTracked } from ${JSON.stringify(processesModule)};
    const sleeper = spawnTracked('sleep', ['60']);
    console.log(sleeper.child.pid);
    setTimeout(() => { ${ending} }, 100);
  `;
  const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  parent.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  await new Promise((resolve) => parent.once('exit', resolve));
  const pid = Number.parseInt(stdout, 10);
  assert.ok(pid > 0, `child pid printed, got ${JSON.stringify(stdout)}`);
  return pid;
}

test('children are killed when the test process exits', async () => {
  const pid = await orphanAfter('process.exit(3);');
  assert.ok(await eventuallyDead(pid, 2000), `sleep ${pid} survived its parent`);
});

test('children are killed when the test process is terminated by a signal', async () => {
  const pid = await orphanAfter("process.kill(process.pid, 'SIGTERM');");
  assert.ok(await eventuallyDead(pid, 2000), `sleep ${pid} survived its parent`);
});

test('stop() escalates to SIGKILL when the child ignores SIGTERM, and output is captured', async () => {
  const stubborn = spawnTracked('sh', ['-c', 'trap "" TERM; echo ready; echo oops >&2; exec sleep 60']);
  await stubborn.output.waitFor(/oops/, 2000, stubborn.exited);
  assert.match(stubborn.output.text(), /ready/);
  const status = await stubborn.stop('SIGTERM', 300);
  assert.equal(status.signal, 'SIGKILL');
});

test('waitFor fails with the output when the process exits first', async () => {
  const quick = spawnTracked('sh', ['-c', 'echo bye; exit 7']);
  await assert.rejects(quick.output.waitFor(/never/, 2000, quick.exited), /exited \(code 7\).*\n.*bye/s);
});
