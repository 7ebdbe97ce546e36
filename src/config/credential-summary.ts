import { keyIdentity } from '../auth/credential-store.js';
import { limitsText } from './credential-limits.js';
import { type GatewayConfig, PLACEHOLDER_API_KEY, SCOPES, type Scope } from './types.js';

/** One credential as check, /config_dump and /credentials show it: never its secret or digest. */
export interface CredentialSummary {
  /** The name logs, metrics and the identity header use. */
  readonly name: string;
  readonly kind: 'key' | 'user';
  readonly scopes: readonly Scope[];
  /** RFC 3339 (UTC), or null: it does not expire. */
  readonly expires: string | null;
  /** The variable it comes from. */
  readonly source: string;
  /** ENVOY_API_KEYS / ENVOY_BASIC_AUTH_CREDENTIALS: scope all, no name of its own. */
  readonly legacy: boolean;
  /** The public stock key. */
  readonly placeholder?: boolean;
  /** `rate 100/s burst 100, bytes 64MiB/min`: only when it has limits (issue 14). */
  readonly limits?: string;
}

/** The credentials the configured auth method accepts, legacy first, then named ones by name. */
export function credentialSummaries(config: GatewayConfig): CredentialSummary[] {
  const keys = config.authMethod !== 'basic-auth';
  const users = config.authMethod !== 'api-key';
  const out: CredentialSummary[] = [];
  if (keys) {
    for (const key of config.apiKeys) {
      out.push({
        name: keyIdentity(key),
        kind: 'key',
        scopes: SCOPES,
        expires: null,
        source: 'ENVOY_API_KEYS',
        legacy: true,
        ...(key === PLACEHOLDER_API_KEY ? { placeholder: true } : {}),
      });
    }
  }
  if (users) {
    for (const { user } of config.basicCredentials) {
      out.push({
        name: user,
        kind: 'user',
        scopes: SCOPES,
        expires: null,
        source: 'ENVOY_BASIC_AUTH_CREDENTIALS',
        legacy: true,
      });
    }
  }
  for (const credential of config.namedCredentials) {
    const kind = credential.secret.kind;
    if ((kind === 'key' && !keys) || (kind === 'user' && !users)) continue;
    const limits = limitsText(credential.limits);
    out.push({
      name: credential.name,
      kind,
      scopes: credential.scopes,
      expires: credential.expiresAt === null ? null : new Date(credential.expiresAt).toISOString(),
      source: credential.variable,
      legacy: false,
      ...(limits === null ? {} : { limits }),
    });
  }
  return out;
}

/** Named credentials the auth method does not accept: check warns about them. */
export function ignoredCredentials(config: GatewayConfig): string[] {
  return config.namedCredentials
    .filter(({ secret }) =>
      secret.kind === 'key' ? config.authMethod === 'basic-auth' : config.authMethod === 'api-key',
    )
    .map(
      ({ variable, secret }) =>
        `${variable}: ENVOY_AUTH_METHOD=${config.authMethod} takes no ${secret.kind === 'key' ? 'keys' : 'users'}, so this credential is not accepted`,
    );
}

/** `ingest+read`, or `all`. */
export function scopeText(scopes: readonly Scope[]): string {
  return scopes.length === SCOPES.length ? 'all' : scopes.join('+');
}

/** How a reload changed one credential: logged by name, never with a secret. */
export interface CredentialChange {
  readonly credential: string;
  readonly kind: 'key' | 'user';
  readonly change: 'added' | 'removed' | 'rotated' | 're-scoped' | 'rotated and re-scoped';
  readonly scopes: string;
  readonly expires: string | null;
}

/** What secret a credential has, as a comparable string (only compared, never shown). */
function secretOf(config: GatewayConfig, summary: CredentialSummary): string {
  if (summary.legacy) {
    if (summary.kind === 'key') return summary.name;
    const user = config.basicCredentials.find((credential) => credential.user === summary.name);
    return JSON.stringify(user ?? null);
  }
  const named = config.namedCredentials.find((credential) => credential.variable === summary.source);
  return JSON.stringify(named?.secret ?? null);
}

/**
 * Credentials added, removed, rotated (same name, new secret) or re-scoped (same name, new
 * scopes or expiry) between two configurations, by name.
 */
export function credentialChanges(previous: GatewayConfig, next: GatewayConfig): CredentialChange[] {
  const before = new Map(credentialSummaries(previous).map((summary) => [summary.name, summary]));
  const after = new Map(credentialSummaries(next).map((summary) => [summary.name, summary]));
  const changes: CredentialChange[] = [];
  const line = (summary: CredentialSummary, change: CredentialChange['change']): CredentialChange => ({
    credential: summary.name,
    kind: summary.kind,
    change,
    scopes: scopeText(summary.scopes),
    expires: summary.expires,
  });
  for (const [name, summary] of before) {
    if (!after.has(name)) changes.push(line(summary, 'removed'));
  }
  for (const [name, summary] of after) {
    const old = before.get(name);
    if (old === undefined) {
      changes.push(line(summary, 'added'));
      continue;
    }
    const rotated = old.kind !== summary.kind || secretOf(previous, old) !== secretOf(next, summary);
    const rescoped = scopeText(old.scopes) !== scopeText(summary.scopes) || old.expires !== summary.expires;
    if (rotated && rescoped) changes.push(line(summary, 'rotated and re-scoped'));
    else if (rotated) changes.push(line(summary, 'rotated'));
    else if (rescoped) changes.push(line(summary, 're-scoped'));
  }
  return changes;
}
