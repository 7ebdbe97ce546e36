import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { freePort } from './ports.js';
import { spawnTracked, type TrackedProcess, waitUntilReady } from './processes.js';
import { registerSecret } from './secrets.js';
import { requireBinary } from './services.js';

/*
 * A real Redis for the LIMIT_STORE tests (issue 14): Debian's redis-server on a free loopback
 * port, persistence off, ended by its own PID. A missing binary fails the test (requireBinary).
 */

export const REDIS_BINARY = '/usr/bin/redis-server';

export interface RunningRedis {
  readonly port: number;
  /** The LIMIT_STORE value that reaches it (with the password, when there is one). */
  readonly url: string;
  readonly pid: number | undefined;
  output(): string;
  /** Ends it at once (SIGKILL): Redis gone in the middle of a run. */
  kill(): Promise<void>;
  /** Stops it answering (SIGSTOP), connections open: a Redis that has become slow. */
  pause(): void;
  resume(): void;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisOptions {
  /** requirepass for the default user; recorded as a secret no gateway may print. */
  readonly password?: string;
  /** TLS only (rediss://), with this certificate and key (PEM files); clients need no certificate. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
}

/** Answers true once `PING` gets +PONG (or -NOAUTH: it is up and wants the password). */
function answersPing(port: number, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(1000, () => socket.destroy());
    socket.on(tls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      reply += data.toString('latin1');
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'));
      }
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(false));
  });
}

export async function startRedis(options: RedisOptions = {}): Promise<RunningRedis> {
  await requireBinary(REDIS_BINARY, 'redis-server');
  if (options.password !== undefined)
    registerSecret({ kind: 'password', value: options.password, user: 'default' });
  const port = await freePort();
  const { tls } = options;
  const listen =
    tls === undefined
      ? ['--port', String(port)]
      : [
          ...['--port', '0', '--tls-port', String(port)],
          ...['--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile],
          ...['--tls-ca-cert-file', tls.certFile, '--tls-auth-clients', 'no'],
        ];
  const args = [
    ...listen,
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    ...(options.password === undefined ? [] : ['--requirepass', options.password]),
  ];
  let tracked: TrackedProcess;
  const launch = async (): Promise<void> => {
    tracked = spawnTracked(REDIS_BINARY, args, {});
    await waitUntilReady(
      `redis-server on port ${port}`,
      () => answersPing(port, tls !== undefined),
      tracked,
      10_000,
    );
  };
  await launch();
  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  return {
    port,
    url: `${tls === undefined ? 'redis' : 'rediss'}://${auth}127.0.0.1:${port}/0`,
    get pid() {
      return tracked.child.pid;
    },
    output: () => tracked.output.text(),
    kill: async () => {
      await tracked.stop('SIGKILL');
    },
    pause: () => {
      if (tracked.child.pid !== undefined) process.kill(tracked.child.pid, 'SIGSTOP');
    },
    resume: () => {
      if (tracked.child.pid !== undefined) process.kill(tracked.child.pid, 'SIGCONT');
    },
    restart: launch,
    stop: async () => {
      await tracked.stop('SIGTERM');
    },
  };
}
