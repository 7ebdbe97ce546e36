import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { defaultBurst, limitsText } from '../../src/config/credential-limits.js';
import { parseGatewayConfig } from '../../src/config/parse.js';
import type { CredentialLimits } from '../../src/config/types.js';

const OFF = {
  OTLP_GRPC_UPSTREAM: 'off',
  OTLP_HTTP_UPSTREAM: 'off',
  PROMETHEUS_UPSTREAM: 'off',
  VICTORIAMETRICS_UPSTREAM: 'off',
};
const KEY = 'k-checkout-0123456789';

function parse(options: string): { limits: CredentialLimits | null; errors: readonly string[] } {
  const result = parseGatewayConfig(
    { ...OFF, GATEWAY_KEY_CHECKOUT: `${KEY}; scopes=ingest${options}` },
    '/etc/gw/.env',
  );
  return result.ok
    ? { limits: result.config.namedCredentials[0]?.limits ?? null, errors: [] }
    : { limits: null, errors: result.errors };
}

describe('limit options on credential lines (issue 14)', () => {
  const accepted = (options: string, want: CredentialLimits, text: string | null) => {
    const { limits, errors } = parse(options);
    assert.deepEqual(errors, [], options);
    assert.deepEqual(limits, want, options);
    assert.equal(limitsText(limits as CredentialLimits), text, options);
  };
  test('accepted values', () => {
    accepted('', { rate: null, bytesPerMinute: null, inflight: null }, null);
    accepted(
      '; rate=100/s',
      { rate: { count: 100, windowSeconds: 1, burst: 100 }, bytesPerMinute: null, inflight: null },
      'rate 100/s burst 100',
    );
    accepted(
      '; rate=600/min; burst=25',
      { rate: { count: 600, windowSeconds: 60, burst: 25 }, bytesPerMinute: null, inflight: null },
      'rate 600/min burst 25',
    );
    accepted(
      '; rate=30/min',
      { rate: { count: 30, windowSeconds: 60, burst: 1 }, bytesPerMinute: null, inflight: null },
      'rate 30/min burst 1',
    );
    accepted(
      '; bytes=64MiB/min',
      { rate: null, bytesPerMinute: 64 * 1024 ** 2, inflight: null },
      'bytes 64MiB/min',
    );
    accepted('; bytes=1GiB/min', { rate: null, bytesPerMinute: 1024 ** 3, inflight: null }, 'bytes 1GiB/min');
    accepted('; bytes=1500/min', { rate: null, bytesPerMinute: 1500, inflight: null }, 'bytes 1500B/min');
    accepted('; bytes=3KiB/min', { rate: null, bytesPerMinute: 3072, inflight: null }, 'bytes 3KiB/min');
    accepted('; inflight=16', { rate: null, bytesPerMinute: null, inflight: 16 }, 'inflight 16');
    accepted(
      '; inflight=4; bytes=2MiB/min; rate=10/s; burst=20',
      { rate: { count: 10, windowSeconds: 1, burst: 20 }, bytesPerMinute: 2 * 1024 ** 2, inflight: 4 },
      'rate 10/s burst 20, bytes 2MiB/min, inflight 4',
    );
  });

  const refused = (options: string, want: RegExp) => {
    const { errors } = parse(options);
    assert.equal(errors.length, 1, `${options}: ${JSON.stringify(errors)}`);
    assert.match(errors[0] as string, want, options);
    assert.ok(!(errors[0] as string).includes(KEY), 'an error never echoes the key');
  };
  test('bad values are errors naming the variable', () => {
    refused('; rate=100', /^GATEWAY_KEY_CHECKOUT: rate= must be <n>\/s or <n>\/min/);
    refused('; rate=0/s', /^GATEWAY_KEY_CHECKOUT: rate= /);
    refused('; rate=-5/s', /^GATEWAY_KEY_CHECKOUT: rate= /);
    refused('; rate=1.5/s', /^GATEWAY_KEY_CHECKOUT: rate= /);
    refused('; rate=10/h', /^GATEWAY_KEY_CHECKOUT: rate= /);
    refused('; rate=10/s; burst=0', /^GATEWAY_KEY_CHECKOUT: burst= must be a whole number from 1/);
    refused('; rate=10/s; burst=many', /^GATEWAY_KEY_CHECKOUT: burst= /);
    refused('; burst=10', /^GATEWAY_KEY_CHECKOUT: burst= needs rate=/);
    refused('; bytes=64MiB', /^GATEWAY_KEY_CHECKOUT: bytes= must be <size>\/min/);
    refused('; bytes=64MB/min', /^GATEWAY_KEY_CHECKOUT: bytes= /);
    refused('; bytes=0/min', /^GATEWAY_KEY_CHECKOUT: bytes= /);
    refused('; bytes=2048GiB/min', /^GATEWAY_KEY_CHECKOUT: bytes= .*up to 1024GiB/);
    refused('; inflight=0', /^GATEWAY_KEY_CHECKOUT: inflight= must be a whole number from 1/);
    refused('; inflight=', /^GATEWAY_KEY_CHECKOUT: inflight= /);
    refused('; rate=10/s; rate=20/s', /^GATEWAY_KEY_CHECKOUT: option rate= is given twice/);
    refused('; ratelimit=10', /the options are scopes=, expires=, rate=, burst=, bytes= and inflight=/);
  });

  test('property: burst defaults to the per-second rate rounded up, never below 1', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.constantFrom<1 | 60>(1, 60),
        (count, windowSeconds) => {
          const burst = defaultBurst(count, windowSeconds);
          assert.ok(burst >= 1 && burst >= count / windowSeconds && burst < count / windowSeconds + 1);
          const { limits } = parse(`; rate=${count}/${windowSeconds === 1 ? 's' : 'min'}`);
          assert.equal(limits?.rate?.burst, burst);
        },
      ),
      { numRuns: 50 },
    );
  });
});
