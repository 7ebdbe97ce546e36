import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  RETRY_INFO_TYPE_URL,
  retryDelayOf,
  statusDetailsWithRetry,
} from '../../src/limits/grpc-retry-info.js';

test('google.rpc.Status with a RetryInfo: the protobuf wire bytes, written out by hand', () => {
  const typeUrl = Buffer.from(RETRY_INFO_TYPE_URL);
  assert.equal(typeUrl.length, 40);
  // RetryInfo{retry_delay: Duration{seconds: 3, nanos: 500_000_000}}
  const duration = Buffer.from([0x08, 0x03, 0x10, 0x80, 0xca, 0xb5, 0xee, 0x01]);
  const info = Buffer.concat([Buffer.from([0x0a, duration.length]), duration]);
  const any = Buffer.concat([
    Buffer.from([0x0a, typeUrl.length]),
    typeUrl,
    Buffer.from([0x12, info.length]),
    info,
  ]);
  const want = Buffer.concat([Buffer.from([0x08, 0x08, 0x12, 0x01, 0x6d, 0x1a, any.length]), any]).toString(
    'base64',
  );
  assert.equal(statusDetailsWithRetry(8, 'm', 3500), want);
  assert.deepEqual(retryDelayOf(want), { code: 8, message: 'm', retryDelayMs: 3500 });
});

test('whole seconds carry no nanos field', () => {
  const details = Buffer.from(statusDetailsWithRetry(8, 'rate limit of a exceeded', 2000), 'base64');
  assert.ok(details.includes(Buffer.from([0x0a, 0x02, 0x08, 0x02])), details.toString('hex'));
  assert.equal(retryDelayOf(details.toString('base64')).retryDelayMs, 2000);
});
