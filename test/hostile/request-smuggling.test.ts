import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import { sleep } from '../support/wait.js';
import { type CountingUpstream, rawExchange, startCountingUpstream } from './support.js';

/**
 * Request smuggling (CL.TE, TE.CL, TE.TE and friends): every ambiguous framing gets 400 and a
 * closed connection, and one client request never becomes two upstream requests. The attacks
 * carry a valid key, so only the framing stands between them and the upstream.
 */

const KEY = 'hostile-smuggling-key-41d2';
const auth = `Host: 127.0.0.1\r\nX-API-Key: ${KEY}\r\n`;
/** What a smuggled second request looks like; it must never reach the upstream. */
const SMUGGLED = `GET /smuggled HTTP/1.1\r\n${auth}\r\n`;

let upstream: CountingUpstream;
let gateway: RunningGateway;

before(async () => {
  upstream = await startCountingUpstream();
  gateway = await startGatewayFor({ http: upstream.url }, { ENVOY_API_KEYS: KEY });
});

after(async () => {
  await gateway?.stop();
  await upstream?.stop();
});

interface Case {
  readonly name: string;
  readonly bytes: string;
  /**
   * Upstream requests the attack may cause: 0 when the headers are already ambiguous; 1 when
   * the framing breaks inside the body, after a well-formed request started (that one request
   * is aborted, never followed by a second).
   */
  readonly upstreamAtMost: 0 | 1;
}

const cases: readonly Case[] = [
  {
    name: 'Content-Length plus Transfer-Encoding (CL.TE)',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'Transfer-Encoding plus Content-Length (TE.CL)',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1\r\nA\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'two different Content-Lengths',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Content-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'two equal Content-Lengths',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Content-Length: 0\r\nContent-Length: 0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'Content-Length list "0, 40"',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Content-Length: 0, ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'signed Content-Length',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Content-Length: +0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'obfuscated Transfer-Encoding: xchunked',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'obfuscated Transfer-Encoding: chunked, identity',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'obfuscated Transfer-Encoding: identity, chunked',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'two Transfer-Encoding headers',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'space before the colon: "Transfer-Encoding : chunked"',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'obs-fold continuation line in Transfer-Encoding',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'bare LF line endings',
    bytes: `POST /v1/traces HTTP/1.1\nHost: 127.0.0.1\nX-API-Key: ${KEY}\nContent-Length: 0\n\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'a bare LF inside the header section',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}X-Pad: a\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'a bare CR inside a header value',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}X-Pad: a\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 0,
  },
  {
    name: 'bare LF chunk framing',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n${SMUGGLED}`,
    upstreamAtMost: 1,
  },
  {
    name: 'chunk extension ending in a bare LF',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Transfer-Encoding: chunked\r\n\r\n5;ext\nhello\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 1,
  },
  {
    name: 'chunk size overflowing 64 bits',
    bytes: `POST /v1/traces HTTP/1.1\r\n${auth}Transfer-Encoding: chunked\r\n\r\n1FFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n${SMUGGLED}`,
    upstreamAtMost: 1,
  },
];

describe('request smuggling: 400, connection closed, never two upstream requests from one', () => {
  for (const { name, bytes, upstreamAtMost } of cases) {
    test(name, async () => {
      const before = upstream.seen.length;
      const answer = await rawExchange(gateway.ports.http, bytes, { waitMs: 3000 });
      assert.equal(answer.status, 400, `answer: ${JSON.stringify(answer.text.slice(0, 300))}`);
      assert.equal((answer.text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length, 1, 'exactly one response');
      assert.ok(answer.closed, 'the connection must be closed after a framing error');
      const reached = upstream.seen.slice(before).map((seen) => seen.url);
      assert.ok(reached.length <= upstreamAtMost, `reached the upstream: ${JSON.stringify(reached)}`);
      assert.ok(!reached.includes('/smuggled'), 'the smuggled request reached the upstream');
    });
  }

  test('control: two well-framed pipelined requests are two upstream requests, answered in order', async () => {
    const before = upstream.seen.length;
    const first = `POST /first HTTP/1.1\r\n${auth}Content-Length: 5\r\n\r\nhello`;
    const second = `POST /second HTTP/1.1\r\n${auth}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;
    const answer = await rawExchange(gateway.ports.http, `${first}${second}`, { waitMs: 1500 });
    assert.equal((answer.text.match(/HTTP\/1\.1 200/g) ?? []).length, 2, answer.text);
    assert.deepEqual(
      upstream.seen.slice(before).map((seen) => seen.url),
      ['/first', '/second'],
    );
  });

  test('pipelined requests are forwarded one at a time: the next reaches the upstream after the answer before it', async () => {
    upstream.delayMs = 400;
    try {
      const before = upstream.seen.length;
      const post = (path: string): string => `POST ${path} HTTP/1.1\r\n${auth}Content-Length: 5\r\n\r\nhello`;
      const exchange = rawExchange(gateway.ports.http, `${post('/p1')}${post('/p2')}${post('/p3')}`, {
        waitMs: 3000,
      });
      await sleep(250);
      const whileFirstIsAnswered = upstream.seen.slice(before).map((seen) => seen.url);
      const answer = await exchange;
      assert.deepEqual(whileFirstIsAnswered, ['/p1'], 'only the first request may be upstream meanwhile');
      assert.equal((answer.text.match(/HTTP\/1\.1 200/g) ?? []).length, 3, answer.text);
      assert.deepEqual(
        upstream.seen.slice(before).map((seen) => seen.url),
        ['/p1', '/p2', '/p3'],
      );
    } finally {
      upstream.delayMs = 0;
    }
  });
});
