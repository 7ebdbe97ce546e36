import { BlockList, isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';
import type { AddressRange } from '../config/types.js';

export interface FailureLimiterOptions {
  /** Failures allowed per address and window; the next request is refused. 0: no limit. */
  readonly limit: number;
  readonly windowMs: number;
  /** Addresses never limited (AUTH_FAILURE_LIMIT_EXEMPT): a shared NAT, a sidecar. */
  readonly exempt: readonly AddressRange[];
  /** Addresses tracked at once, at most (least recently failed are forgotten first). */
  readonly maxTrackedAddresses: number;
  /** Clock, for tests. */
  readonly now?: () => number;
  /**
   * Called once per address and window, when its failures reach the limit: the log line that
   * says why it gets 429 from now on. A refusal at accept has no request to log, and one line
   * per refusal would let a reconnecting client flood the log.
   */
  readonly onLimitReached?: (event: LimitReached) => void;
  /** LIMIT_STORE=redis: the counts every worker and replica on the same Redis add to. */
  readonly shared?: SharedFailures | null;
}

/**
 * A store of failure counts shared by every process (issue 14). Only consulted while `up`;
 * adding is background work: the request path never waits for it.
 */
export interface SharedFailures {
  readonly up: boolean;
  /** Adds one failure to `key`'s window (which starts at its first failure, in any process). */
  addFailure(key: string, windowMs: number): Promise<{ readonly failures: number; readonly msLeft: number }>;
}

export interface LimitReached {
  readonly address: string;
  readonly failures: number;
  readonly windowMs: number;
}

interface FailureWindow {
  readonly startedAt: number;
  failures: number;
}

/**
 * Counts authentication failures per client address in fixed windows that start at an
 * address's first failure. Once an address has failed `limit` times, every request from it is
 * refused until its window ends, even one with a valid credential: letting a valid credential
 * through would turn the limiter into an oracle (a guess that is right gets a different answer
 * than the 429s around it), so an attacker would keep guessing at full speed. The cost is that
 * an honest client behind the same address (a shared NAT) waits for the window too.
 *
 * IPv6 clients are counted per /64, the block one host usually owns; IPv4-mapped IPv6
 * addresses count as their IPv4 address. Memory is bounded by `maxTrackedAddresses`, and an
 * entry is dropped when its window ends. The counts live in this process; with a shared store
 * (LIMIT_STORE=redis) each failure is also added to the count every process shares, and the
 * total it answers replaces the local one when larger: a process learns the total with the
 * answer to its own failure, so a client spread over P processes gets at most one failure past
 * the limit in each (more only when they arrive at one process faster than Redis answers; see
 * docs/security.md). While the store is down, each counts on its own. Exempt addresses are
 * neither counted nor refused (IPv4 ranges also match IPv4-mapped IPv6 clients: Node's
 * BlockList does that).
 */
export class AuthFailureLimiter {
  /** Requests refused because their address was over the limit. */
  refused = 0;
  private limit: number;
  private windowMs: number;
  private exempt: BlockList | null;
  private readonly windows: LRUCache<string, FailureWindow>;
  private readonly now: () => number;
  private readonly onLimitReached: ((event: LimitReached) => void) | undefined;
  private readonly shared: SharedFailures | null;

  constructor(options: FailureLimiterOptions) {
    this.limit = options.limit;
    this.windowMs = options.windowMs;
    this.exempt = blockListOf(options.exempt);
    this.now = options.now ?? Date.now;
    this.onLimitReached = options.onLimitReached;
    this.shared = options.shared ?? null;
    this.windows = new LRUCache({ max: options.maxTrackedAddresses });
  }

  /** Applies a reloaded limit, window and exempt list; running windows keep their start. */
  configure(options: Pick<FailureLimiterOptions, 'limit' | 'windowMs' | 'exempt'>): void {
    this.limit = options.limit;
    this.windowMs = options.windowMs;
    this.exempt = blockListOf(options.exempt);
  }

  get trackedAddresses(): number {
    return this.windows.size;
  }

  /**
   * Seconds until `address` may try again (at least 1), or 0 when it is not blocked. Counts the
   * refusal: call it once per request, before any authentication work.
   */
  retryAfterSeconds(address: string | undefined): number {
    if (this.limit === 0 || this.windows.size === 0 || address === undefined) return 0;
    const key = addressKey(address);
    const window = this.windows.get(key);
    if (window === undefined || window.failures < this.limit) return 0;
    const remainingMs = window.startedAt + this.windowMs - this.now();
    if (remainingMs <= 0) {
      this.windows.delete(key);
      return 0;
    }
    // Checked only here, on the refusal path: an address exempted by a reload may have failed before.
    if (this.isExempt(address)) return 0;
    this.refused++;
    return Math.max(1, Math.ceil(remainingMs / 1000));
  }

  /** Failures of `address` in its current window: what the 429's log line reports. */
  failuresOf(address: string | undefined): number {
    if (address === undefined) return 0;
    const window = this.windows.get(addressKey(address));
    return window === undefined || this.now() - window.startedAt >= this.windowMs ? 0 : window.failures;
  }

  /** Records one failed authentication of `address`. */
  recordFailure(address: string | undefined): void {
    if (this.limit === 0 || address === undefined || this.isExempt(address)) return;
    const key = addressKey(address);
    const now = this.now();
    const window = this.windows.get(key);
    let failures = 1;
    if (window === undefined || now - window.startedAt >= this.windowMs) {
      this.windows.set(key, { startedAt: now, failures });
    } else {
      failures = ++window.failures;
    }
    if (failures === this.limit) this.onLimitReached?.({ address, failures, windowMs: this.windowMs });
    if (this.shared?.up === true) {
      this.shared.addFailure(`auth-failures:${key}`, this.windowMs).then(
        (total) => this.learnTotal(key, address, total.failures, total.msLeft),
        () => undefined,
      );
    }
  }

  /** The shared total of `key`'s window, when it is more than this process has counted. */
  private learnTotal(key: string, address: string, failures: number, msLeft: number): void {
    const now = this.now();
    const window = this.windows.get(key);
    const counted = window === undefined || now - window.startedAt >= this.windowMs ? 0 : window.failures;
    if (failures <= counted) return;
    this.windows.set(key, { startedAt: now + msLeft - this.windowMs, failures });
    if (counted < this.limit && failures >= this.limit)
      this.onLimitReached?.({ address, failures, windowMs: this.windowMs });
  }

  private isExempt(address: string): boolean {
    return this.exempt?.check(address, isIPv6(address) ? 'ipv6' : 'ipv4') ?? false;
  }
}

function blockListOf(ranges: readonly AddressRange[]): BlockList | null {
  if (ranges.length === 0) return null;
  const list = new BlockList();
  for (const range of ranges) list.addSubnet(range.address, range.prefix, range.family);
  return list;
}

const MAPPED_IPV4 = '::ffff:';

/** The unit a limit applies to: an IPv4 address, or the /64 of an IPv6 address. */
export function addressKey(address: string): string {
  if (address.startsWith(MAPPED_IPV4) && address.includes('.')) return address.slice(MAPPED_IPV4.length);
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, without leading zeros (zone ids dropped). */
function expandIPv6(address: string): string[] {
  const bare = address.split('%')[0] ?? address;
  const [head = '', tail] = bare.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  // An embedded IPv4 tail (::1.2.3.4) is two groups.
  const last = tailGroups.length > 0 ? tailGroups : headGroups;
  const dotted = last[last.length - 1];
  if (dotted?.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted.split('.').map(Number);
    last.splice(last.length - 1, 1, ((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
  }
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(Math.max(0, missing)).fill('0'), ...tailGroups];
  return groups.map((group) => Number.parseInt(group, 16).toString(16));
}
