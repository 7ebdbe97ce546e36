import { isIP, SocketAddress } from 'node:net';
import type { AddressRange, ListenAddress } from './types.js';

/** A value parser answers the parsed value or a message saying what is wrong (without the value's name). */
export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

/** Comma-separated items, each trimmed, empty items dropped (the stock gateway's rule). */
export function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]*)):(\d{1,5})$/;

/** `host:port`, `:port` (every interface) or `[v6]:port`. */
export function parseListenAddress(text: string): Parsed<ListenAddress> {
  const match = HOST_PORT.exec(text.trim());
  if (!match) return fail(`expected host:port, :port or [v6addr]:port, got "${text}"`);
  const [, v6, hostName, portText] = match;
  const port = Number(portText);
  if (port < 1 || port > 65535) return fail(`port ${portText} is out of range 1-65535`);
  if (v6 !== undefined) {
    if (isIP(v6) !== 6) return fail(`"${v6}" is not an IPv6 address`);
    return ok({ host: v6, port });
  }
  return ok({ host: hostName === '' || hostName === undefined ? '0.0.0.0' : hostName, port });
}

/** `off` (null) or an origin such as `http://otel-collector:4317`. */
export function parseUpstream(text: string): Parsed<URL | null> {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === 'off') return ok(null);
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return fail(`expected a URL such as http://host:port or "off", got "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return fail(`scheme must be http or https, got "${url.protocol.slice(0, -1)}"`);
  }
  if (url.username !== '' || url.password !== '') return fail('credentials in the URL are not supported');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    return fail(`must be an origin without path, query or fragment, got "${text}"`);
  }
  return ok(new URL(url.origin));
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Envoy-style durations (`250ms`, `5s`, `1m`, `1h`); a bare number is seconds. Answers milliseconds. */
export function parseDuration(text: string): Parsed<number> {
  const match = DURATION.exec(text.trim());
  if (!match) return fail(`expected a duration such as 5s, 250ms or 2m, got "${text}"`);
  // Rounded before the checks: a sub-millisecond value would otherwise become 0, which
  // undici and Node timers read as "no timeout at all".
  const ms = Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 1000));
  if (!Number.isFinite(ms) || ms <= 0) return fail(`must be at least 1ms, got "${text}"`);
  if (ms > 2 ** 31 - 1) return fail(`must be at most 24 days, got "${text}"`);
  return ok(ms);
}

/** A whole number within [min, max]. */
export function parseInteger(text: string, min: number, max: number): Parsed<number> {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return fail(`expected a whole number, got "${text}"`);
  const value = Number(trimmed);
  if (value < min || value > max) return fail(`must be between ${min} and ${max}, got ${value}`);
  return ok(value);
}

/** One of a fixed set of words, case-insensitive and trimmed. */
export function parseOneOf<T extends string>(text: string, allowed: readonly T[]): Parsed<T> {
  const value = text.trim().toLowerCase();
  const match = allowed.find((candidate) => candidate === value);
  return match === undefined ? fail(`must be one of ${allowed.join(', ')}, got "${text}"`) : ok(match);
}

/** Durations as an operator writes them in the env file (`5s`, `250ms`, `2m`). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const RANGE = /^([^/]+)(?:\/(\d{1,3}))?$/;

/**
 * Comma-separated addresses and CIDR ranges, IPv4 or IPv6 (`10.0.0.0/8`, `::1`,
 * `fd00::/8`). The address itself is read by Node's own parser (net.SocketAddress), which also
 * gives its canonical spelling; a bare address is a range of one.
 */
export function parseAddressRanges(text: string): Parsed<readonly AddressRange[]> {
  const ranges: AddressRange[] = [];
  for (const [index, entry] of splitList(text).entries()) {
    const where = `entry ${index + 1} ("${entry}")`;
    const match = RANGE.exec(entry);
    const family = match?.[1] === undefined ? 0 : isIP(match[1]);
    if (match?.[1] === undefined || family === 0) {
      return fail(`${where} is not an IPv4 or IPv6 address or CIDR range such as 10.0.0.0/8 or fd00::/8`);
    }
    const bits = family === 4 ? 32 : 128;
    const prefix = match[2] === undefined ? bits : Number(match[2]);
    if (prefix > bits) return fail(`${where}: an IPv${family} prefix length is at most ${bits}`);
    const { address } = new SocketAddress({ address: match[1], family: family === 4 ? 'ipv4' : 'ipv6' });
    ranges.push({ address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' });
  }
  return ok(ranges);
}

/** `10.0.0.0/8`, `::1/128`: a range as check and /config_dump show it. */
export function formatRange(range: AddressRange): string {
  return `${range.address}/${range.prefix}`;
}
