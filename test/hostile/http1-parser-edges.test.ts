import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import { type CountingUpstream, rawExchange, startCountingUpstream } from './support.js';

/**
 * Issue 10 §6: two places where what Node's parser did and what the gateway answered parted.
 * A request that ends its connection with a pipelined one behind it was performed upstream
 * while the client got a 400 in place of its answer; a Content-Length placed after Node's
 * header-count limit framed a body that the gateway forwarded as `content-length: 0`.
 */

const KEY = 'hostile-parser-edges-key-0b4e';
let upstream: CountingUpstream;
let gateway: RunningGateway;

before(async () => {
  upstream = await startCountingUpstream();
  // The answer is still being waited for when the pipelined bytes arrive.
  upstream.delayMs = 300;
  gateway = await startGatewayFor({ http: upstream.url }, { ENVOY_API_KEYS: KEY, AUTH_FAILURE_LIMIT: '0' });
});

after(async () => {
  await gateway?.stop();
  await upstream?.stop();
});

for (const [name, first] of [
  ['HTTP/1.0', `GET /closing HTTP/1.0\r\nHost: x\r\nX-API-Key: ${KEY}\r\n\r\n`],
  ['Connection: close', `GET /closing HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nConnection: close\r\n\r\n`],
] as const) {
  test(`a request with ${name} and a pipelined one behind it: the client gets the first answer, the second is never served`, async () => {
    const seenBefore = upstream.seen.length;
    const answer = await rawExchange(
      gateway.ports.http,
      `${first}GET /behind HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\n\r\n`,
      { waitMs: 3000 },
    );
    assert.equal(answer.status, 200, answer.text);
    assert.match(answer.text, /upstream ok$/);
    assert.ok(answer.closed, 'the connection stayed open');
    assert.deepEqual(
      upstream.seen.slice(seenBefore).map((request) => request.url),
      ['/closing'],
    );
  });
}

test('a request that reaches the header-count limit gets 431, and its body never goes upstream as no body', async () => {
  const seenBefore = upstream.seen.length;
  let filler = '';
  for (let i = 0; i < 2100; i++) filler += `a${i}:\r\n`;
  const answer = await rawExchange(
    gateway.ports.http,
    `POST /many HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\n${filler}Content-Length: 5\r\n\r\nhello`,
    { waitMs: 3000 },
  );
  assert.equal(answer.status, 431, answer.text.slice(0, 200));
  assert.equal(upstream.seen.length, seenBefore, 'the request reached the upstream');
});

test('control: 100 header fields are fine', async () => {
  let filler = '';
  for (let i = 0; i < 100; i++) filler += `a${i}: v\r\n`;
  const answer = await rawExchange(
    gateway.ports.http,
    `POST /fine HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\n${filler}Content-Length: 5\r\nConnection: close\r\n\r\nhello`,
    { waitMs: 3000 },
  );
  assert.equal(answer.status, 200, answer.text.slice(0, 200));
});
