import type { CredentialLimits, RequestRate } from './types.js';

/*
 * Limit options on a credential line (issue 14):
 *
 *   rate=<n>/s | rate=<n>/min   requests, with burst=<n> (default: the per-second rate, at least 1)
 *   bytes=<size>/min            request body bytes on ingest paths: 65536/min, 64KiB/min, 64MiB/min, 1GiB/min
 *   inflight=<n>                requests in progress at once (per gateway process)
 */

export const LIMIT_OPTIONS = ['rate', 'burst', 'bytes', 'inflight'] as const;
export type LimitOption = (typeof LIMIT_OPTIONS)[number];

/** A credential without limit options (and every legacy credential). */
export const NO_LIMITS: CredentialLimits = Object.freeze({
  rate: null,
  bytesPerMinute: null,
  inflight: null,
});
const COUNT = /^[1-9]\d{0,8}$/;
const RATE = /^([1-9]\d{0,8})\/(s|min)$/;
const BYTES = /^([1-9]\d{0,12})(B|KiB|MiB|GiB)?\/min$/;
const UNITS: Readonly<Record<string, number>> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };
/** 1 TiB/min: far above any link, low enough that the arithmetic stays exact in a double. */
const MAX_BYTES_PER_MINUTE = 1024 ** 4;

/** The limits of one credential line from its options; every problem pushed, naming `variable`. */
export function readLimits(
  variable: string,
  options: ReadonlyMap<string, string>,
  errors: string[],
): CredentialLimits {
  const rateText = options.get('rate');
  const burstText = options.get('burst');
  const bytesText = options.get('bytes');
  const inflightText = options.get('inflight');
  let rate: RequestRate | null = null;
  if (rateText !== undefined) {
    const match = RATE.exec(rateText);
    if (match === null) {
      errors.push(`${variable}: rate= must be <n>/s or <n>/min with n a whole number from 1 (rate=100/s)`);
    } else {
      const count = Number(match[1]);
      const windowSeconds = match[2] === 's' ? 1 : 60;
      const burst =
        burstText === undefined
          ? defaultBurst(count, windowSeconds)
          : readCount(variable, 'burst', burstText, errors);
      if (burst !== null) rate = Object.freeze({ count, windowSeconds, burst });
    }
  } else if (burstText !== undefined) {
    errors.push(`${variable}: burst= needs rate= (burst=200; rate=100/s)`);
  }
  let bytesPerMinute: number | null = null;
  if (bytesText !== undefined) {
    const match = BYTES.exec(bytesText);
    const value = match === null ? Number.NaN : Number(match[1]) * (UNITS[match[2] ?? 'B'] ?? 1);
    if (!(value <= MAX_BYTES_PER_MINUTE)) {
      errors.push(
        `${variable}: bytes= must be <size>/min with size a whole number of B, KiB, MiB or GiB up to 1024GiB (bytes=64MiB/min)`,
      );
    } else {
      bytesPerMinute = value;
    }
  }
  const inflight = inflightText === undefined ? null : readCount(variable, 'inflight', inflightText, errors);
  if (rate === null && bytesPerMinute === null && inflight === null) return NO_LIMITS;
  return Object.freeze({ rate, bytesPerMinute, inflight });
}

/** The per-second rate, rounded up, and at least one request. */
export function defaultBurst(count: number, windowSeconds: 1 | 60): number {
  return Math.max(1, Math.ceil(count / windowSeconds));
}

function readCount(variable: string, option: LimitOption, text: string, errors: string[]): number | null {
  if (COUNT.test(text)) return Number(text);
  errors.push(
    `${variable}: ${option}= must be a whole number from 1 (${option}=${option === 'inflight' ? 16 : 200})`,
  );
  return null;
}

/** `100/s burst 200, 64MiB/min, inflight 16`: how check shows the limits; null when there are none. */
export function limitsText(limits: CredentialLimits): string | null {
  const parts: string[] = [];
  if (limits.rate !== null) {
    parts.push(
      `rate ${limits.rate.count}/${limits.rate.windowSeconds === 1 ? 's' : 'min'} burst ${limits.rate.burst}`,
    );
  }
  if (limits.bytesPerMinute !== null) parts.push(`bytes ${sizeText(limits.bytesPerMinute)}/min`);
  if (limits.inflight !== null) parts.push(`inflight ${limits.inflight}`);
  return parts.length === 0 ? null : parts.join(', ');
}

function sizeText(bytes: number): string {
  for (const unit of ['GiB', 'MiB', 'KiB'] as const) {
    const size = UNITS[unit] as number;
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
