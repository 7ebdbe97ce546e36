import type { AuthMethod } from '../config/types.js';

export const BASIC_CHALLENGE = 'Basic realm="Observability Pipeline"';

export interface Http401 {
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

const API_KEY_BODY = 'Missing or Invalid API Key';
const BASIC_BODY = 'Unauthorized';

/**
 * The stock gateway's 401 answers, byte for byte. Every mode sends the Basic challenge so a
 * browser opens its password prompt (in `api-key` mode the key is typed as the password).
 */
export function http401For(method: AuthMethod): Http401 {
  const body = method === 'basic-auth' ? BASIC_BODY : API_KEY_BODY;
  return Object.freeze({
    body,
    headers: Object.freeze({
      'content-type': 'text/plain',
      'content-length': String(Buffer.byteLength(body)),
      'www-authenticate': BASIC_CHALLENGE,
    }),
  });
}

/** `grpc-message` of a rejected gRPC call (percent-encoding is not needed: plain ASCII). */
export function grpcUnauthenticatedMessage(method: AuthMethod): string {
  return method === 'basic-auth' ? 'Unauthorized' : 'Missing or Invalid API Key';
}
