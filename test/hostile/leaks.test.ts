import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as connectHttp2, createServer as createHttp2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import { startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import { revealingForms, type UsedSecret } from '../support/secrets.js';
import { metricsText, rawExchange } from './support.js';

/**
 * Nothing leaks: no key, password, bcrypt hash or base64 credential (configured or merely
 * presented) appears in the logs (at debug level, access log on), in any answer a client gets,
 * in metric labels or in /config_dump, whatever the gateway is put through: every credential
 * spelling, wrong guesses, malformed and oversized requests, reloads (valid and broken), and
 * upstreams that fail with stack traces. Upstream error bodies are replaced by a short text
 * naming the upstream and the status. Everything is collected, then grepped.
 */

const KEY_A = 'leak-test-key-A1b2C3d4e5';
const KEY_B = 'leak-test-key-Z9y8X7w6v5';
const ROTATED_KEY = 'leak-test-key-rotated-Q7r8';
const PLAIN_USER = 'carol';
const PLAIN_PASSWORD = 'Plain-Pa55word!carol';
const BCRYPT_USER = 'dave';
const BCRYPT_PASSWORD = 'Bcrypt-Secret-77-dave';
/** Presented, never configured: a near miss of a real key, and guesses. They must not be logged either. */
const GUESSES = [`${KEY_A}x`, 'attacker-guess-31337', 'Guessed-Password-99'];
const STACK = 'panic: runtime error at /srv/internal/secret_module.go:1337 goroutine 7 [running]';

let bcryptHash: string;
let gateway: RunningGateway;
let httpUpstream: HttpServer;
let grpcUpstream: Http2Server;
/** Everything any client saw: status lines, headers and bodies. */
const seenByClients: string[] = [];

before(async () => {
  bcryptHash = await bcrypt.hash(BCRYPT_PASSWORD, 4);
  // An upstream whose /fail answers 500 with a stack trace and whose /ok answers 200.
  httpUpstream = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url?.startsWith('/fail'))
        res.writeHead(500, { 'content-type': 'text/plain', 'retry-after': '3' }).end(STACK);
      else res.end('ok');
    });
  });
  await new Promise<void>((resolve) => httpUpstream.listen(0, '127.0.0.1', resolve));
  // A gRPC upstream that fails every call with INTERNAL and a stack trace in grpc-message.
  grpcUpstream = createHttp2Server();
  grpcUpstream.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.resume();
    stream.respond(
      {
        ':status': 200,
        'content-type': 'application/grpc',
        'grpc-status': '13',
        'grpc-message': encodeURIComponent(STACK),
      },
      { endStream: true },
    );
  });
  await new Promise<void>((resolve) => grpcUpstream.listen(0, '127.0.0.1', resolve));
  const httpPort = (httpUpstream.address() as AddressInfo).port;
  const grpcPort = (grpcUpstream.address() as AddressInfo).port;
  gateway = await startGatewayFor(
    { http: `http://127.0.0.1:${httpPort}`, grpc: `http://127.0.0.1:${grpcPort}` },
    {
      ENVOY_AUTH_METHOD: 'any',
      ENVOY_API_KEYS: `${KEY_A}, ${KEY_B}`,
      ENVOY_BASIC_AUTH_CREDENTIALS: `${PLAIN_USER}:${PLAIN_PASSWORD},${BCRYPT_USER}:${bcryptHash}`,
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
      AUTH_FAILURE_LIMIT: '5',
    },
  );
});

after(async () => {
  await gateway?.stop();
  await new Promise<void>((resolve) => (httpUpstream ? httpUpstream.close(() => resolve()) : resolve()));
  await new Promise<void>((resolve) => (grpcUpstream ? grpcUpstream.close(() => resolve()) : resolve()));
});

const b64 = (text: string): string => Buffer.from(text).toString('base64');

async function http(request: string, from?: string): Promise<string> {
  const answer = await rawExchange(gateway.ports.http, request, {
    untilComplete: true,
    waitMs: 3000,
    ...(from === undefined ? {} : { localAddress: from }),
  });
  seenByClients.push(answer.text);
  return answer.text;
}

const get = (headers: string, path = '/ok', from?: string): Promise<string> =>
  http(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`, from);

async function grpcCall(metadata: Record<string, string>): Promise<void> {
  const session = connectHttp2(gateway.url('grpc'));
  session.on('error', () => undefined);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3000);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...metadata,
    });
    stream.on('response', (headers) => seenByClients.push(JSON.stringify(headers)));
    stream.on('trailers', (trailers) => seenByClients.push(JSON.stringify(trailers)));
    stream.on('data', (chunk: Buffer) => seenByClients.push(chunk.toString('latin1')));
    stream.on('error', () => undefined);
    stream.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  });
  session.destroy();
}

describe('nothing leaks', () => {
  test('the gateway is put through every credential path, good and bad', async () => {
    // Accepted, in every spelling.
    for (const key of [KEY_A, KEY_B]) {
      assert.match(await get(`X-API-Key: ${key}\r\n`), /^HTTP\/1\.1 200/);
      assert.match(await get(`Authorization: Bearer ${key}\r\n`), /^HTTP\/1\.1 200/);
      assert.match(await get(`Authorization: Basic ${b64(`anyone:${key}`)}\r\n`), /^HTTP\/1\.1 200/);
      await grpcCall({ 'x-api-key': key });
    }
    assert.match(
      await get(`Authorization: Basic ${b64(`${PLAIN_USER}:${PLAIN_PASSWORD}`)}\r\n`),
      /^HTTP\/1\.1 200/,
    );
    assert.match(
      await get(`Authorization: Basic ${b64(`${BCRYPT_USER}:${BCRYPT_PASSWORD}`)}\r\n`),
      /^HTTP\/1\.1 200/,
    );
    await grpcCall({ authorization: `Basic ${b64(`${BCRYPT_USER}:${BCRYPT_PASSWORD}`)}` });
    // Refused: guesses, near misses, conflicts, malformed, from an address that ends up blocked.
    const attacker = '127.0.0.40';
    for (const guess of GUESSES) {
      await get(`X-API-Key: ${guess}\r\n`, '/ok', attacker);
      await get(`Authorization: Basic ${b64(`${BCRYPT_USER}:${guess}`)}\r\n`, '/ok', attacker);
      await get(`X-API-Key: ${KEY_A}\r\nX-API-Key: ${guess}\r\n`, '/ok', attacker);
      await grpcCall({ 'x-api-key': guess });
    }
    assert.match(await get(`X-API-Key: ${KEY_A}\r\n`, '/ok', attacker), /^HTTP\/1\.1 429/);
    await get(`X-API-Key: ${KEY_A}\0\r\n`);
    await get(`Authorization: Basic ${b64(`${PLAIN_USER}:`)}${KEY_B}\r\n`);
    await get(`X-API-Key: ${KEY_B}\r\nX-Big: ${'a'.repeat(20_000)}\r\n`);
    await http(
      `POST /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${KEY_A}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    );
    await http(
      `POST /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${KEY_A}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`,
    );
  });

  test('upstream error bodies and stack traces never reach the client: a short text naming the upstream and the status', async () => {
    const answer = await get(`X-API-Key: ${KEY_A}\r\n`, '/fail');
    assert.match(answer, /^HTTP\/1\.1 500 /);
    assert.match(answer, /\r\nretry-after: 3\r\n/i, 'Retry-After is kept');
    const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    assert.match(body, /^upstream 127\.0\.0\.1:\d+ answered 500$/);
    const before = seenByClients.length;
    await grpcCall({ 'x-api-key': KEY_A });
    const grpcAnswer = seenByClients.slice(before).join('\n');
    assert.match(grpcAnswer, /"grpc-status":"13"/);
    assert.match(decodeURIComponent(grpcAnswer), /upstream 127\.0\.0\.1:\d+ answered grpc-status 13/);
  });

  test('reloads, valid and broken, and the admin answers', async () => {
    // A broken entry: the error must name the entry, never its content.
    await writeFile(
      gateway.envFile,
      `ENVOY_API_KEYS=${KEY_A},${ROTATED_KEY}\nENVOY_BASIC_AUTH_CREDENTIALS=${PLAIN_USER}:${PLAIN_PASSWORD},${BCRYPT_USER}${BCRYPT_PASSWORD}\n`,
    );
    const broken = await fetch(`${gateway.url('admin')}/reload`, { method: 'POST' });
    seenByClients.push(await broken.text());
    assert.equal(broken.status, 400);
    await writeFile(
      gateway.envFile,
      `ENVOY_API_KEYS=${KEY_A},${ROTATED_KEY}\nENVOY_BASIC_AUTH_CREDENTIALS=${PLAIN_USER}:${PLAIN_PASSWORD},${BCRYPT_USER}:${bcryptHash}\n`,
    );
    const reloaded = await fetch(`${gateway.url('admin')}/reload`, { method: 'POST' });
    seenByClients.push(await reloaded.text());
    assert.equal(reloaded.status, 200);
    assert.match(await get(`X-API-Key: ${ROTATED_KEY}\r\n`), /^HTTP\/1\.1 200/);
  });

  test('logs, client answers, metrics and /config_dump contain no secret in any spelling', async () => {
    const secrets: UsedSecret[] = [
      { kind: 'api-key', value: KEY_A },
      { kind: 'api-key', value: KEY_B },
      { kind: 'api-key', value: ROTATED_KEY },
      { kind: 'password', value: PLAIN_PASSWORD, user: PLAIN_USER },
      { kind: 'password', value: BCRYPT_PASSWORD, user: BCRYPT_USER },
      { kind: 'bcrypt-hash', value: bcryptHash, user: BCRYPT_USER },
      ...GUESSES.map((guess): UsedSecret => ({ kind: 'api-key', value: guess })),
    ];
    const configDump = await (await fetch(`${gateway.url('admin')}/config_dump`)).text();
    const places = {
      logs: gateway.output(),
      'client answers': seenByClients.join('\n'),
      metrics: await metricsText(gateway),
      config_dump: configDump,
    };
    assert.ok(places.logs.length > 1000, 'the gateway logged almost nothing: the check would prove nothing');
    assert.match(places.logs, /"status":401/, 'the access log is on');
    for (const [place, text] of Object.entries(places)) {
      for (const secret of secrets) {
        for (const form of revealingForms(secret)) {
          assert.ok(
            !text.includes(form),
            `${place} contain a ${secret.kind}${secret.user ? ` of ${secret.user}` : ''}`,
          );
        }
      }
      assert.ok(!text.includes('secret_module.go'), `${place} contain the upstream's stack trace`);
    }
    // Our own failures never show a stack trace to a client either.
    assert.doesNotMatch(places['client answers'], /\n\s+at \S+ \(/);
    assert.match(configDump, /\[redacted\]/);
  });
});
