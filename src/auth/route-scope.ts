import { posix } from 'node:path';
import type { ListenerName, Scope } from '../config/types.js';

/*
 * Which scope a request needs (issue 12), decided on the path exactly as the upstream will route it.
 *
 * Prometheus and VictoriaMetrics are Go servers: net/http hands their routers the percent-DECODED
 * path (`%2F` is `/`, `%61dmin` is `admin`), VictoriaMetrics then folds `//` into `/`, and Go's
 * ServeMux redirects `/./` and `/../` away. Classifying the raw target would let
 * `/api/v1/query%2F..%2Fadmin/tsdb/delete_series` pass as a query. Refusing every encoded path
 * instead would break honest clients (percent-encoded label names, vmui assets). So the gateway
 * normalises and forwards: it decodes every `%XX` once (as Go does, so `%252e` stays the literal
 * text `%2e`), reads `\` as `/`, folds repeated slashes, resolves `.` and `..` (never above the
 * root), classifies that clean path, and forwards that same path re-encoded, followed by the query
 * as received. The upstream decodes it back to exactly the path that was classified, so there is
 * no second interpretation to exploit. Only what has no single meaning is refused with 400: a
 * malformed escape (`%zz`, `%4`), a control character (decoded or raw), a target that is not a path.
 *
 * Any path the tables below do not list needs `admin`: closed by default.
 */

export { SCOPES, type Scope } from '../config/types.js';

export type RouteDecision =
  | {
      readonly ok: true;
      readonly scope: Scope;
      /** the request target to forward upstream: normalised path + the original query */
      readonly target: string;
    }
  | {
      readonly ok: false;
      /** one line for a 400 body, no secret */
      readonly reason: string;
    };

/**
 * One route of an upstream. `exact`: the path itself; `prefix`: every path that starts with it, as
 * the upstream's `strings.HasPrefix` or catch-all route does; `pattern`: `{name}` stands for one
 * non-empty path segment, `{name...}` for one or more characters that may include `/`.
 */
export interface RouteRule {
  readonly path: string;
  readonly match: 'exact' | 'prefix' | 'pattern';
  readonly scope: Scope;
  /** Methods for which the upstream does something else on this path (upper case). */
  readonly methods?: Readonly<Record<string, Scope>>;
  /** Also the same path with one `/` appended (the upstream trims it or lists both). */
  readonly trailingSlash?: boolean;
  /** Prefixes the upstream strips before routing, so the route is also served under them. */
  readonly alsoUnder?: readonly string[];
  /** Where the upstream defines it. */
  readonly source: string;
}

const exact = (path: string, scope: Scope, source: string, more: Partial<RouteRule> = {}): RouteRule =>
  Object.freeze({ path, match: 'exact', scope, source, ...more });
const prefix = (path: string, scope: Scope, source: string, more: Partial<RouteRule> = {}): RouteRule =>
  Object.freeze({ path, match: 'prefix', scope, source, ...more });
const pattern = (path: string, scope: Scope, source: string, more: Partial<RouteRule> = {}): RouteRule =>
  Object.freeze({ path, match: 'pattern', scope, source, ...more });

// Prometheus 2.42 (Debian's package) to 3.x, default --web.route-prefix. Sources:
// web/api/v1/api.go `API.Register` (mounted at /api/v1 by web.go `Handler.Run`) and web/web.go `New`.
const API = 'web/api/v1/api.go';
const API3 = 'web/api/v1/api.go (3.x)';
const WEB = 'web/web.go';
const WEB2 = 'web/web.go (2.x UI)';
const WEB3 = 'web/web.go (3.x UI)';

export const PROMETHEUS_ROUTES: readonly RouteRule[] = Object.freeze([
  // Receivers.
  exact('/api/v1/write', 'ingest', `${API}: remote write receiver`),
  exact('/api/v1/otlp/v1/metrics', 'ingest', `${API}: OTLP receiver (2.47+)`),
  // Queries and metadata. GET and POST alike; DELETE /series was the 2.x drop-series API.
  exact('/api/v1/query', 'read', API),
  exact('/api/v1/query_range', 'read', API),
  exact('/api/v1/query_exemplars', 'read', API),
  exact('/api/v1/format_query', 'read', API),
  exact('/api/v1/parse_query', 'read', API3),
  exact('/api/v1/read', 'read', `${API}: remote read`),
  exact('/api/v1/labels', 'read', API),
  pattern('/api/v1/label/{name}/values', 'read', `${API}: /label/:name/values`),
  exact('/api/v1/series', 'read', API, { methods: { DELETE: 'admin' } }),
  exact('/api/v1/metadata', 'read', API),
  exact('/api/v1/search/metric_names', 'read', API3),
  exact('/api/v1/search/label_names', 'read', API3),
  exact('/api/v1/search/label_values', 'read', API3),
  // Targets, rules and status.
  exact('/api/v1/scrape_pools', 'read', API),
  exact('/api/v1/scrape_pools/config', 'read', API3),
  exact('/api/v1/targets', 'read', API),
  exact('/api/v1/targets/metadata', 'read', API),
  exact('/api/v1/targets/relabel_steps', 'read', API3),
  exact('/api/v1/alertmanagers', 'read', API),
  exact('/api/v1/alerts', 'read', API),
  exact('/api/v1/rules', 'read', API),
  exact('/api/v1/status/config', 'read', API),
  exact('/api/v1/status/runtimeinfo', 'read', API),
  exact('/api/v1/status/buildinfo', 'read', API),
  exact('/api/v1/status/flags', 'read', API),
  exact('/api/v1/status/tsdb', 'read', API),
  exact('/api/v1/status/tsdb/blocks', 'read', API3),
  exact('/api/v1/status/self_metrics', 'read', API3),
  exact('/api/v1/status/walreplay', 'read', API),
  exact('/api/v1/notifications', 'read', API3),
  exact('/api/v1/notifications/live', 'read', API3),
  exact('/api/v1/features', 'read', API3),
  exact('/api/v1/openapi.yaml', 'read', API3),
  // Admin API (--web.enable-admin-api), listed so the docs name it.
  exact('/api/v1/admin/tsdb/delete_series', 'admin', API),
  exact('/api/v1/admin/tsdb/clean_tombstones', 'admin', API),
  exact('/api/v1/admin/tsdb/snapshot', 'admin', API),
  // Federation, the process's own state, health.
  exact('/federate', 'read', WEB),
  // /metrics is the upstream's own operational counters: read-only, no series data and no
  // secrets, no more than /api/v1/status/* shows, and a read credential is what a monitoring
  // scraper of the stack holds.
  exact('/metrics', 'read', WEB),
  exact('/version', 'read', WEB),
  exact('/-/healthy', 'read', WEB),
  exact('/-/ready', 'read', WEB),
  exact('/-/reload', 'admin', `${WEB}: lifecycle API`),
  exact('/-/quit', 'admin', `${WEB}: lifecycle API`),
  prefix('/debug/', 'admin', `${WEB}: pprof`),
  // Web UI: the React router's pages, its assets, console templates and --web.user-assets.
  exact('/', 'read', WEB),
  // Debian's 2.42 redirects /graph to /graph/ and that to the classic UI.
  exact('/graph', 'read', WEB, { trailingSlash: true }),
  exact('/query', 'read', WEB3),
  exact('/alerts', 'read', WEB),
  exact('/rules', 'read', WEB),
  exact('/tsdb-status', 'read', WEB),
  exact('/config', 'read', WEB),
  exact('/flags', 'read', WEB),
  exact('/service-discovery', 'read', WEB),
  exact('/alertmanager-discovery', 'read', WEB3),
  exact('/status', 'read', WEB),
  exact('/targets', 'read', WEB),
  exact('/starting', 'read', WEB2),
  exact('/agent', 'read', `${WEB}: agent mode`),
  exact('/favicon.ico', 'read', WEB),
  exact('/favicon.svg', 'read', WEB3),
  exact('/manifest.json', 'read', WEB),
  prefix('/static/', 'read', WEB),
  prefix('/assets/', 'read', WEB3),
  // The classic UI (2.x; Debian's 2.42 serves it): pages and assets, nothing that changes state.
  exact('/classic', 'read', WEB2),
  prefix('/classic/', 'read', WEB2),
  prefix('/consoles/', 'read', WEB),
  prefix('/user/', 'read', WEB),
]);

// Single-node VictoriaMetrics 1.79 (Debian's package) to 1.150, default -http.pathPrefix. Its
// request path, in order: lib/httpserver/httpserver.go `builtinRoutesHandler`, then
// app/victoria-metrics/main.go `requestHandler` (`/`), app/vminsert/main.go `RequestHandler`,
// app/vmselect/main.go `RequestHandler` (which first strips one `/prometheus` or `/graphite`
// prefix), app/vmstorage/main.go `requestHandler`. The OpenTSDB `/api/put` and Graphite/OpenTSDB
// plaintext receivers listen on their own ports (-opentsdbHTTPListenAddr, ...), never on 8428.
const HTTPSERVER = 'lib/httpserver/httpserver.go';
const VMINSERT = 'app/vminsert/main.go';
const VMSELECT = 'app/vmselect/main.go';
const VMSTORAGE = 'app/vmstorage/main.go';
const STRIPPED = Object.freeze(['/prometheus', '/graphite']);
const PROM = Object.freeze(['/prometheus']);
const sel = (more: Partial<RouteRule> = {}): Partial<RouteRule> => ({ alsoUnder: STRIPPED, ...more });

export const VICTORIAMETRICS_ROUTES: readonly RouteRule[] = Object.freeze([
  // Built in to every VictoriaMetrics HTTP server.
  exact('/health', 'read', HTTPSERVER),
  exact('/-/healthy', 'read', HTTPSERVER),
  exact('/-/ready', 'read', HTTPSERVER),
  // The InfluxDB agents' ping, as the source says; their write path needs it, a reader does not.
  exact('/ping', 'ingest', `${HTTPSERVER}: InfluxDB agents`),
  // The process's own counters: read, for the same reason as Prometheus' /metrics.
  exact('/metrics', 'read', HTTPSERVER),
  exact('/flags', 'read', HTTPSERVER),
  exact('/robots.txt', 'read', HTTPSERVER),
  exact('/favicon.ico', 'read', HTTPSERVER),
  prefix('/debug/pprof/', 'admin', HTTPSERVER),
  exact('/', 'read', 'app/victoria-metrics/main.go: endpoint list'),
  // Receivers (vminsert).
  exact('/api/v1/write', 'ingest', `${VMINSERT}: Prometheus remote write`, { alsoUnder: PROM }),
  exact('/api/v1/push', 'ingest', `${VMINSERT}: remote write`, { alsoUnder: PROM }),
  exact('/api/v1/import', 'ingest', `${VMINSERT}: JSON lines`, { alsoUnder: PROM }),
  exact('/api/v1/import/csv', 'ingest', VMINSERT, { alsoUnder: PROM }),
  exact('/api/v1/import/native', 'ingest', VMINSERT, { alsoUnder: PROM }),
  prefix('/api/v1/import/prometheus', 'ingest', `${VMINSERT}: text format, Pushgateway paths`, {
    alsoUnder: PROM,
  }),
  exact('/write', 'ingest', `${VMINSERT}: InfluxDB line protocol`),
  exact('/api/v2/write', 'ingest', `${VMINSERT}: InfluxDB line protocol`),
  exact('/influx/write', 'ingest', `${VMINSERT}: InfluxDB line protocol`),
  exact('/influx/api/v2/write', 'ingest', `${VMINSERT}: InfluxDB line protocol`),
  // What InfluxDB writers call before writing (database list, health).
  exact('/query', 'ingest', `${VMINSERT}: InfluxDB writers`),
  exact('/influx/query', 'ingest', `${VMINSERT}: InfluxDB writers`),
  exact('/influx/health', 'ingest', `${VMINSERT}: InfluxDB writers`),
  exact('/opentelemetry/v1/metrics', 'ingest', `${VMINSERT}: OTLP`),
  exact('/opentelemetry/api/v1/push', 'ingest', `${VMINSERT}: OTLP`),
  exact('/zabbixconnector/api/v1/history', 'ingest', VMINSERT),
  exact('/newrelic', 'ingest', `${VMINSERT}: New Relic agent`),
  exact('/newrelic/inventory/deltas', 'ingest', `${VMINSERT}: New Relic agent`),
  exact('/newrelic/infra/v2/metrics/events/bulk', 'ingest', `${VMINSERT}: New Relic agent`),
  // vminsert trims one trailing slash from /datadog/ paths (legacy agents).
  exact('/datadog/api/v1/series', 'ingest', `${VMINSERT}: DataDog agent`, { trailingSlash: true }),
  exact('/datadog/api/v2/series', 'ingest', `${VMINSERT}: DataDog agent`, { trailingSlash: true }),
  exact('/datadog/api/beta/sketches', 'ingest', `${VMINSERT}: DataDog agent`, { trailingSlash: true }),
  exact('/datadog/api/v1/validate', 'ingest', `${VMINSERT}: DataDog agent`, { trailingSlash: true }),
  exact('/datadog/api/v1/check_run', 'ingest', `${VMINSERT}: DataDog agent`, { trailingSlash: true }),
  exact('/datadog/api/v1/metadata', 'ingest', `${VMINSERT}: DataDog agent`, { trailingSlash: true }),
  exact('/datadog/intake', 'ingest', `${VMINSERT}: DataDog agent`, { trailingSlash: true }),
  // Scrape status (vminsert); /config also answers to -configAuthKey.
  prefix('/static', 'read', `${VMINSERT}: status page assets`, { alsoUnder: PROM }),
  exact('/targets', 'read', VMINSERT, { alsoUnder: PROM }),
  exact('/service-discovery', 'read', VMINSERT, { alsoUnder: PROM }),
  exact('/api/v1/targets', 'read', VMINSERT, { alsoUnder: PROM }),
  exact('/target_response', 'read', `${VMINSERT}: a target's scrape, from /targets`, { alsoUnder: PROM }),
  exact('/config', 'read', VMINSERT, { alsoUnder: PROM }),
  exact('/api/v1/status/config', 'read', VMINSERT, { alsoUnder: PROM }),
  exact('/ready', 'read', VMINSERT),
  exact('/-/reload', 'admin', VMINSERT, { alsoUnder: PROM }),
  // Queries, export, metadata and status (vmselect).
  exact('/api/v1/query', 'read', VMSELECT, sel()),
  exact('/api/v1/query_range', 'read', VMSELECT, sel()),
  exact('/api/v1/query_exemplars', 'read', VMSELECT, sel()),
  exact('/api/v1/series', 'read', VMSELECT, sel()),
  exact('/api/v1/series/count', 'read', VMSELECT, sel()),
  exact('/api/v1/labels', 'read', VMSELECT, sel()),
  pattern('/api/v1/label/{name...}/values', 'read', VMSELECT, sel()),
  exact('/api/v1/metadata', 'read', VMSELECT, sel()),
  exact('/api/v1/export', 'read', VMSELECT, sel()),
  exact('/api/v1/export/csv', 'read', VMSELECT, sel()),
  exact('/api/v1/export/native', 'read', VMSELECT, sel()),
  exact('/federate', 'read', VMSELECT, sel()),
  exact('/api/v1/status/tsdb', 'read', VMSELECT, sel()),
  exact('/api/v1/status/active_queries', 'read', VMSELECT, sel()),
  exact('/api/v1/status/top_queries', 'read', VMSELECT, sel()),
  exact('/api/v1/status/metric_names_stats', 'read', VMSELECT, sel()),
  exact('/api/v1/status/buildinfo', 'read', VMSELECT, sel()),
  exact('/api/v1/rules', 'read', VMSELECT, sel()),
  exact('/rules', 'read', VMSELECT, sel()),
  exact('/api/v1/alerts', 'read', VMSELECT, sel()),
  exact('/alerts', 'read', VMSELECT, sel()),
  exact('/api/v1/notifiers', 'read', VMSELECT, sel()),
  exact('/notifiers', 'read', VMSELECT, sel()),
  // Graphite API (vmselect). tagSeries and tagMultiSeries register series: a write.
  exact('/render', 'read', VMSELECT, sel()),
  exact('/metrics/find', 'read', VMSELECT, sel({ trailingSlash: true })),
  exact('/metrics/expand', 'read', VMSELECT, sel({ trailingSlash: true })),
  exact('/metrics/index.json', 'read', VMSELECT, sel({ trailingSlash: true })),
  exact('/tags', 'read', VMSELECT, sel()),
  exact('/tags/findSeries', 'read', VMSELECT, sel()),
  exact('/tags/autoComplete/tags', 'read', VMSELECT, sel()),
  exact('/tags/autoComplete/values', 'read', VMSELECT, sel()),
  exact('/tags/tagSeries', 'ingest', VMSELECT, sel()),
  exact('/tags/tagMultiSeries', 'ingest', VMSELECT, sel()),
  exact('/tags/delSeries', 'admin', VMSELECT, sel()),
  prefix('/tags/', 'read', `${VMSELECT}: a tag's values (the exact /tags/ paths above first)`, sel()),
  prefix('/functions', 'read', VMSELECT, sel()),
  // Web UI (vmselect): vmui, its /graph alias for Grafana links, the tools it links to, and the
  // -vmalert.proxyURL proxy, whose /vmalert/ paths in app/vmalert/web.go only read.
  exact('/vmui', 'read', VMSELECT, sel()),
  prefix('/vmui/', 'read', VMSELECT, sel()),
  exact('/graph', 'read', VMSELECT, sel()),
  prefix('/graph/', 'read', VMSELECT, sel()),
  exact('/vmalert', 'read', VMSELECT, sel()),
  prefix('/vmalert/', 'read', `${VMSELECT}, app/vmalert/web.go`, sel()),
  exact('/expand-with-exprs', 'read', VMSELECT, sel()),
  exact('/prettify-query', 'read', VMSELECT, sel()),
  exact('/metric-relabel-debug', 'read', VMSELECT, sel()),
  exact('/target-relabel-debug', 'read', VMSELECT, sel()),
  // Admin, listed so the docs name it.
  exact('/api/v1/admin/tsdb/delete_series', 'admin', VMSELECT, sel()),
  exact('/api/v1/admin/status/metric_names_stats/reset', 'admin', VMSELECT, sel()),
  exact('/internal/resetRollupResultCache', 'admin', VMSELECT, sel()),
  exact('/internal/force_merge', 'admin', VMSTORAGE),
  exact('/internal/force_flush', 'admin', VMSTORAGE),
  exact('/internal/log_new_series', 'admin', VMSTORAGE),
  exact('/api/v1/admin/tsdb/snapshot', 'admin', VMSTORAGE),
  prefix('/snapshot/', 'admin', VMSTORAGE),
]);

/** A table made ready for lookups: every path an upstream serves a rule under, spelt out. */
interface CompiledTable {
  readonly exact: ReadonlyMap<string, RouteRule>;
  /** Longest first. */
  readonly prefixes: readonly { readonly path: string; readonly rule: RouteRule }[];
  readonly patterns: readonly {
    readonly head: string;
    readonly tail: string;
    readonly spansSegments: boolean;
    readonly rule: RouteRule;
  }[];
}

function compile(rules: readonly RouteRule[]): CompiledTable {
  const exactPaths = new Map<string, RouteRule>();
  const prefixes: { path: string; rule: RouteRule }[] = [];
  const patterns: { head: string; tail: string; spansSegments: boolean; rule: RouteRule }[] = [];
  for (const rule of rules) {
    for (const under of ['', ...(rule.alsoUnder ?? [])]) {
      const path = under + rule.path;
      if (rule.match === 'prefix') {
        prefixes.push({ path, rule });
      } else if (rule.match === 'pattern') {
        const open = path.indexOf('{');
        const close = path.indexOf('}', open);
        patterns.push({
          head: path.slice(0, open),
          tail: path.slice(close + 1),
          spansSegments: path.slice(open, close).endsWith('...'),
          rule,
        });
      } else {
        exactPaths.set(path, rule);
        if (rule.trailingSlash) exactPaths.set(`${path}/`, rule);
      }
    }
  }
  prefixes.sort((a, b) => b.path.length - a.path.length);
  return { exact: exactPaths, prefixes, patterns };
}

const PROMETHEUS = compile(PROMETHEUS_ROUTES);
const VICTORIAMETRICS = compile(VICTORIAMETRICS_ROUTES);

function findRule(table: CompiledTable, path: string): RouteRule | undefined {
  const found = table.exact.get(path);
  if (found !== undefined) return found;
  for (const entry of table.prefixes) {
    if (path.startsWith(entry.path)) return entry.rule;
  }
  for (const { head, tail, spansSegments, rule } of table.patterns) {
    if (path.length <= head.length + tail.length || !path.startsWith(head) || !path.endsWith(tail)) continue;
    if (spansSegments || path.indexOf('/', head.length) === path.length - tail.length) return rule;
  }
  return undefined;
}

function scopeOf(listener: ListenerName, method: string, path: string): Scope {
  const table =
    listener === 'prometheus' ? PROMETHEUS : listener === 'victoriametrics' ? VICTORIAMETRICS : undefined;
  const rule = table === undefined ? undefined : findRule(table, path);
  if (rule === undefined) return 'admin';
  if (rule.methods !== undefined && typeof method === 'string') {
    return rule.methods[method.toUpperCase()] ?? rule.scope;
  }
  return rule.scope;
}

const refused = (reason: string): RouteDecision => Object.freeze({ ok: false, reason });
const NOT_A_PATH = refused('bad request target: not a path starting with /');
const MALFORMED_ESCAPE = refused('bad request target: malformed percent-encoding');
const CONTROL_CHARACTER = refused('bad request target: control character in the path');
const INVALID_CHARACTER = refused('bad request target: a character outside printable ASCII');

/**
 * Bytes a path may carry as they are (RFC 3986 pchar, less `%`, plus `/`): everything else is
 * forwarded percent-encoded.
 */
const PATH_SAFE = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/") {
  PATH_SAFE[c.charCodeAt(0)] = 1;
}
const HEX = '0123456789ABCDEF';
const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const BACKSLASH = 0x5c;

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** True when `path` is already what normalisation would make of it (the common case). */
function isClean(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code >= 128 || PATH_SAFE[code] === 0) return false;
    if (code === SLASH) {
      const next = path.charCodeAt(i + 1);
      if (next === SLASH || next === DOT) return false;
    }
  }
  return true;
}

/**
 * The path as the upstream will route it, as a byte string (one character per byte, 0-255), or
 * the refusal. Every `%XX` is decoded once, `\` reads as `/`, then `path.posix.normalize` folds
 * repeated slashes and resolves `.` and `..` without climbing above the root.
 */
function decodedCleanPath(path: string): string | RouteDecision {
  let decoded = '';
  for (let i = 0; i < path.length; i++) {
    let code = path.charCodeAt(i);
    if (code === PERCENT) {
      const high = hexValue(path.charCodeAt(i + 1));
      const low = hexValue(path.charCodeAt(i + 2));
      if (high < 0 || low < 0) return MALFORMED_ESCAPE;
      code = high * 16 + low;
      i += 2;
    } else if (code <= 0x20 || code >= 0x7f) {
      return code < 0x20 || code === 0x7f ? CONTROL_CHARACTER : INVALID_CHARACTER;
    }
    if (code < 0x20 || code === 0x7f) return CONTROL_CHARACTER;
    decoded += code === BACKSLASH ? '/' : String.fromCharCode(code);
  }
  return posix.normalize(decoded);
}

function encodePath(bytes: string): string {
  let encoded = '';
  for (let i = 0; i < bytes.length; i++) {
    const code = bytes.charCodeAt(i);
    encoded +=
      code < 128 && PATH_SAFE[code] === 1
        ? bytes.charAt(i)
        : `%${HEX.charAt(code >> 4)}${HEX.charAt(code & 15)}`;
  }
  return encoded;
}

/** `target` is the origin-form request target as received (path plus optional ?query), starting with '/'. */
export function classifyRequest(listener: ListenerName, method: string, target: string): RouteDecision {
  // The OTLP ports need `ingest` whatever the path, so their targets go upstream untouched.
  if (listener === 'otlp-grpc' || listener === 'otlp-http') {
    return { ok: true, scope: 'ingest', target };
  }
  if (typeof target !== 'string' || target.charCodeAt(0) !== SLASH) return NOT_A_PATH;
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  if (isClean(path)) {
    return { ok: true, scope: scopeOf(listener, method, path), target };
  }
  const clean = decodedCleanPath(path);
  if (typeof clean !== 'string') return clean;
  const forwarded = queryAt === -1 ? encodePath(clean) : encodePath(clean) + target.slice(queryAt);
  return { ok: true, scope: scopeOf(listener, method, clean), target: forwarded };
}

export const ROUTE_SCOPES_START = '<!-- route-scopes:start -->';
export const ROUTE_SCOPES_END = '<!-- route-scopes:end -->';

function markdownTable(rows: readonly (readonly string[])[]): string {
  const widths = (rows[0] ?? []).map((_, column) =>
    rows.reduce((widest, row) => Math.max(widest, [...(row[column] ?? '')].length), 0),
  );
  const format = (row: readonly string[]): string =>
    `| ${widths.map((width, column) => (row[column] ?? '').padEnd(width)).join(' | ')} |`;
  const [header = [], ...body] = rows;
  return [format(header), format(widths.map((width) => '-'.repeat(width))), ...body.map(format)].join('\n');
}

function ruleRows(rules: readonly RouteRule[]): string[][] {
  const code = (text: string): string => `\`${text}\``;
  const withAliases = rules.some((rule) => rule.alsoUnder !== undefined);
  const rows = [['path', 'match', 'scope', ...(withAliases ? ['also under'] : []), 'source']];
  for (const rule of rules) {
    const methods = Object.entries(rule.methods ?? {}).map(([method, scope]) => `, ${method}: ${scope}`);
    rows.push([
      code(rule.trailingSlash ? `${rule.path}[/]` : rule.path),
      rule.match,
      `${rule.scope}${methods.join('')}`,
      ...(withAliases ? [(rule.alsoUnder ?? []).map(code).join(', ')] : []),
      rule.source,
    ]);
  }
  return rows;
}

/** The route tables as Markdown, for docs/security.md (`npm run docs:routes`). */
export function routeTableMarkdown(): string {
  return [
    '**4317 and 4318** (`otlp-grpc`, `otlp-http`): every request needs `ingest`, whatever its path.',
    '',
    '**9090** (Prometheus; paths from the Prometheus source, 2.42 to 3.x):',
    '',
    markdownTable(ruleRows(PROMETHEUS_ROUTES)),
    '',
    '**8428** (single-node VictoriaMetrics; paths from the VictoriaMetrics source, 1.79 to 1.150):',
    '',
    markdownTable(ruleRows(VICTORIAMETRICS_ROUTES)),
    '',
    'Any other path on 9090 and 8428 needs `admin`.',
  ].join('\n');
}

/** `text` with the part between the markers replaced by the generated tables, or null when a marker is missing. */
export function withRouteTable(text: string): string | null {
  const start = text.indexOf(ROUTE_SCOPES_START);
  const end = text.indexOf(ROUTE_SCOPES_END);
  if (start === -1 || end < start) return null;
  return `${text.slice(0, start + ROUTE_SCOPES_START.length)}\n${routeTableMarkdown()}\n${text.slice(end)}`;
}
