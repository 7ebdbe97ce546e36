import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BASIC_CHALLENGE, grpcUnauthenticatedMessage, http401For } from '../../src/auth/challenge.js';

describe('http401For: the stock 401 answers', () => {
  test('api-key mode: text/plain "Missing or Invalid API Key", plus the Basic challenge for browsers', () => {
    assert.deepEqual(http401For('api-key'), {
      body: 'Missing or Invalid API Key',
      headers: {
        'content-type': 'text/plain',
        'content-length': '26',
        'www-authenticate': 'Basic realm="Observability Pipeline"',
      },
    });
  });

  test('any mode answers like api-key mode', () => {
    assert.deepEqual(http401For('any'), http401For('api-key'));
  });

  test('basic-auth mode: "Unauthorized" with WWW-Authenticate: Basic realm="Observability Pipeline"', () => {
    assert.deepEqual(http401For('basic-auth'), {
      body: 'Unauthorized',
      headers: {
        'content-type': 'text/plain',
        'content-length': '12',
        'www-authenticate': 'Basic realm="Observability Pipeline"',
      },
    });
  });

  test('the challenge constant is the stock realm', () => {
    assert.equal(BASIC_CHALLENGE, 'Basic realm="Observability Pipeline"');
  });

  test('content-length matches the body bytes', () => {
    for (const method of ['api-key', 'basic-auth', 'any'] as const) {
      const answer = http401For(method);
      assert.equal(answer.headers['content-length'], String(Buffer.byteLength(answer.body)));
    }
  });

  test('answers are frozen (shared by every request)', () => {
    const answer = http401For('api-key');
    assert.ok(Object.isFrozen(answer));
    assert.ok(Object.isFrozen(answer.headers));
  });
});

describe('grpcUnauthenticatedMessage', () => {
  test('the same words as the HTTP bodies, plain ASCII', () => {
    assert.equal(grpcUnauthenticatedMessage('api-key'), 'Missing or Invalid API Key');
    assert.equal(grpcUnauthenticatedMessage('any'), 'Missing or Invalid API Key');
    assert.equal(grpcUnauthenticatedMessage('basic-auth'), 'Unauthorized');
    for (const method of ['api-key', 'basic-auth', 'any'] as const) {
      assert.match(grpcUnauthenticatedMessage(method), /^[\x20-\x24\x26-\x7e]+$/);
    }
  });
});
