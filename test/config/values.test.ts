import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseDuration, parseInteger, parseListenAddress, parseUpstream } from '../../src/config/values.js';

describe('parseListenAddress', () => {
  test('host:port', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:4318'), {
      ok: true,
      value: { host: '127.0.0.1', port: 4318 },
    });
    assert.deepEqual(parseListenAddress('gateway.local:9090'), {
      ok: true,
      value: { host: 'gateway.local', port: 9090 },
    });
  });

  test(':port listens on every interface', () => {
    assert.deepEqual(parseListenAddress(':8428'), { ok: true, value: { host: '0.0.0.0', port: 8428 } });
  });

  test('[v6]:port', () => {
    assert.deepEqual(parseListenAddress('[::1]:9901'), { ok: true, value: { host: '::1', port: 9901 } });
    assert.deepEqual(parseListenAddress('[::]:4317'), { ok: true, value: { host: '::', port: 4317 } });
  });

  test('surrounding whitespace is ignored', () => {
    assert.deepEqual(parseListenAddress('  0.0.0.0:4317 \n'), {
      ok: true,
      value: { host: '0.0.0.0', port: 4317 },
    });
  });

  test('port bounds', () => {
    assert.deepEqual(parseListenAddress(':1'), { ok: true, value: { host: '0.0.0.0', port: 1 } });
    assert.deepEqual(parseListenAddress(':65535'), { ok: true, value: { host: '0.0.0.0', port: 65535 } });
    for (const text of [':0', ':65536', ':99999']) {
      const result = parseListenAddress(text);
      assert.equal(result.ok, false, text);
      if (!result.ok) assert.match(result.error, /out of range 1-65535/);
    }
  });

  test('rejects malformed addresses', () => {
    for (const text of [
      '',
      '4317',
      'host',
      'host:',
      'host:port',
      '::1:4317',
      '[::1]',
      '[not-v6]:4317',
      '[1.2.3.4]:4317',
      'a b:4317',
      ':123456',
      '-1',
      ':-1',
      'host:43 17',
    ]) {
      const result = parseListenAddress(text);
      assert.equal(result.ok, false, `"${text}" should be rejected`);
    }
  });

  test('the message quotes what was given', () => {
    const result = parseListenAddress('nonsense');
    assert.deepEqual(result, {
      ok: false,
      error: 'expected host:port, :port or [v6addr]:port, got "nonsense"',
    });
  });

  test('property: never throws, and an accepted address has a port in range', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
        const result = parseListenAddress(text);
        if (result.ok) {
          assert.ok(
            Number.isInteger(result.value.port) && result.value.port >= 1 && result.value.port <= 65535,
          );
          assert.equal(typeof result.value.host, 'string');
        } else {
          assert.equal(typeof result.error, 'string');
        }
      }),
      { numRuns: 200 },
    );
  });

  test('property: every host:port with a valid port round-trips', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.domain()), fc.integer({ min: 1, max: 65535 }), (host, port) => {
        assert.deepEqual(parseListenAddress(`${host}:${port}`), { ok: true, value: { host, port } });
      }),
      { numRuns: 200 },
    );
  });

  test('property: every [v6]:port round-trips', () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.integer({ min: 1, max: 65535 }), (host, port) => {
        assert.deepEqual(parseListenAddress(`[${host}]:${port}`), { ok: true, value: { host, port } });
      }),
      { numRuns: 200 },
    );
  });
});

describe('parseUpstream', () => {
  test('off, in any letter case and with whitespace, disables the listener', () => {
    for (const text of ['off', 'OFF', 'Off', ' off ']) {
      assert.deepEqual(parseUpstream(text), { ok: true, value: null }, text);
    }
  });

  test('an origin is accepted and normalised', () => {
    const result = parseUpstream('http://otel-collector:4317');
    assert.ok(result.ok);
    assert.equal(result.value?.origin, 'http://otel-collector:4317');
    const slash = parseUpstream('http://prometheus:9090/');
    assert.ok(slash.ok);
    assert.equal(slash.value?.origin, 'http://prometheus:9090');
    const https = parseUpstream('https://vm.example.com');
    assert.ok(https.ok);
    assert.equal(https.value?.origin, 'https://vm.example.com');
    const v6 = parseUpstream('http://[::1]:8428');
    assert.ok(v6.ok);
    assert.equal(v6.value?.origin, 'http://[::1]:8428');
  });

  test('rejects what is not an http(s) origin', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /expected a URL/],
      ['otel-collector:4317x', /./],
      ['not a url', /expected a URL/],
      ['ftp://host:21', /scheme must be http or https, got "ftp"/],
      ['grpc://collector:4317', /scheme must be http or https/],
      ['http://user:secret@host:9090', /credentials in the URL are not supported/],
      ['http://host:9090/prefix', /without path, query or fragment/],
      ['http://host:9090?x=1', /without path, query or fragment/],
      ['http://host:9090#frag', /without path, query or fragment/],
    ];
    for (const [text, message] of cases) {
      const result = parseUpstream(text);
      assert.equal(result.ok, false, `"${text}" should be rejected`);
      if (!result.ok) assert.match(result.error, message, text);
    }
  });

  test('a URL with credentials never echoes them', () => {
    const result = parseUpstream('http://admin:hunter2@host:9090/path');
    assert.equal(result.ok, false);
    if (!result.ok) assert.ok(!result.error.includes('hunter2'), result.error);
  });

  test('property: never throws', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.webUrl()), (text) => {
        const result = parseUpstream(text);
        if (result.ok && result.value !== null) {
          assert.ok(result.value.protocol === 'http:' || result.value.protocol === 'https:');
          assert.equal(result.value.pathname, '/');
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('parseDuration', () => {
  test('Envoy-style units, a bare number is seconds', () => {
    const cases: Array<[string, number]> = [
      ['5s', 5000],
      ['250ms', 250],
      ['2m', 120_000],
      ['1h', 3_600_000],
      ['300s', 300_000],
      ['1.5s', 1500],
      ['7', 7000],
      [' 10s ', 10_000],
    ];
    for (const [text, ms] of cases) assert.deepEqual(parseDuration(text), { ok: true, value: ms }, text);
  });

  test('rejects zero, negative, unknown units and overflow', () => {
    const cases: Array<[string, RegExp]> = [
      ['', /expected a duration/],
      ['0', /at least 1ms/],
      ['0s', /at least 1ms/],
      ['-5s', /expected a duration/],
      ['5 s', /expected a duration/],
      ['5d', /expected a duration/],
      ['5S', /expected a duration/],
      ['s', /expected a duration/],
      ['1e3', /expected a duration/],
      ['25d', /expected a duration/],
      ['600h', /at most 24 days/],
      ['99999999999999999999999h', /at most 24 days/],
    ];
    for (const [text, message] of cases) {
      const result = parseDuration(text);
      assert.equal(result.ok, false, `"${text}" should be rejected`);
      if (!result.ok) assert.match(result.error, message, text);
    }
  });

  test('a sub-millisecond duration is rejected, not rounded to 0 (which means "no timeout")', () => {
    for (const text of ['0.4ms', '0.0001s', '0.000001']) {
      const result = parseDuration(text);
      assert.equal(result.ok, false, `"${text}" should be rejected, got ${JSON.stringify(result)}`);
      if (!result.ok) assert.match(result.error, /at least 1ms/);
    }
    assert.deepEqual(parseDuration('0.5ms'), { ok: true, value: 1 });
  });

  test('property: never throws; an accepted duration is a positive whole number of ms that fits a timer', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 20 }),
          fc
            .tuple(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.constantFrom('', 'ms', 's', 'm', 'h'))
            .map(([n, unit]) => `${n}${unit}`),
        ),
        (text) => {
          const result = parseDuration(text);
          if (result.ok) {
            assert.ok(Number.isInteger(result.value), `${text} -> ${result.value}`);
            assert.ok(result.value >= 1 && result.value <= 2 ** 31 - 1, `${text} -> ${result.value}`);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('parseInteger', () => {
  test('whole numbers within bounds', () => {
    assert.deepEqual(parseInteger('20', 1, 100), { ok: true, value: 20 });
    assert.deepEqual(parseInteger(' 1 ', 1, 100), { ok: true, value: 1 });
    assert.deepEqual(parseInteger('100', 1, 100), { ok: true, value: 100 });
  });

  test('rejects out of range and non-integers', () => {
    assert.deepEqual(parseInteger('0', 1, 100), { ok: false, error: 'must be between 1 and 100, got 0' });
    assert.deepEqual(parseInteger('101', 1, 100), { ok: false, error: 'must be between 1 and 100, got 101' });
    for (const text of ['', '-1', '1.5', '1e2', '0x10', 'ten', '1 0']) {
      const result = parseInteger(text, 0, 1000);
      assert.equal(result.ok, false, `"${text}" should be rejected`);
      if (!result.ok) assert.match(result.error, /expected a whole number/, text);
    }
  });

  test('property: never throws; accepted values are within bounds', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 25 }), fc.nat(1000), fc.nat(1000), (text, a, b) => {
        const [min, max] = a <= b ? [a, b] : [b, a];
        const result = parseInteger(text, min, max);
        if (result.ok)
          assert.ok(Number.isInteger(result.value) && result.value >= min && result.value <= max);
      }),
      { numRuns: 200 },
    );
  });
});
