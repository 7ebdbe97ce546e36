import type { AuthMethod } from '../config/types.js';
import { grpcUnauthenticatedMessage, type Http401, http401For } from './challenge.js';
import type { CredentialStore } from './credential-store.js';

/** Everything the request path needs to authenticate, derived once per configuration. */
export interface ActiveCredentials {
  readonly store: CredentialStore;
  readonly method: AuthMethod;
  readonly http401: Http401;
  readonly grpcMessage: string;
}

export function activeCredentials(store: CredentialStore): ActiveCredentials {
  return Object.freeze({
    store,
    method: store.method,
    http401: http401For(store.method),
    grpcMessage: grpcUnauthenticatedMessage(store.method),
  });
}

/**
 * The one mutable cell of the request path: a reload replaces `current` with a fully built
 * value, and each request reads it once, so it sees either the old or the new credentials,
 * never a mix. Open keep-alive connections and HTTP/2 sessions read it per request too.
 */
export class AuthState {
  constructor(public current: ActiveCredentials) {}
}
