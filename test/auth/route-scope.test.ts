import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  classifyRequest,
  PROMETHEUS_ROUTES,
  ROUTE_SCOPES_END,
  ROUTE_SCOPES_START,
  type RouteDecision,
  type RouteRule,
  routeTableMarkdown,
  SCOPES,
  type Scope,
  VICTORIAMETRICS_ROUTES,
  withRouteTable,
} from '../../src/auth/route-scope.js';
import type { ListenerName } from '../../src/config/types.js';

const HTTP_LISTENERS = ['prometheus', 'victoriametrics'] as const;
const LISTENERS: readonly ListenerName[] = ['otlp-grpc', 'otlp-http', ...HTTP_LISTENERS];
const TABLES = { prometheus: PROMETHEUS_ROUTES, victoriametrics: VICTORIAMETRICS_ROUTES } as const;

/** The scope `target` needs, and (when given) the target that goes upstream. */
function f(listener: ListenerName, target: string, scope: Scope, forwarded = target, method = 'GET'): void {
  assert.deepEqual(
    classifyRequest(listener, method, target),
    { ok: true, scope, target: forwarded },
    `${listener} ${method} ${target}`,
  );
}

/** On both 9090 and 8428. */
function both(target: string, scope: Scope, forwarded = target, method = 'GET'): void {
  for (const listener of HTTP_LISTENERS) f(listener, target, scope, forwarded, method);
}

function refused(target: string, reason: string): void {
  for (const listener of HTTP_LISTENERS) {
    assert.deepEqual(
      classifyRequest(listener, 'GET', target),
      { ok: false, reason },
      `${listener} ${target}`,
    );
  }
}

const DELETE_SERIES = '/api/v1/admin/tsdb/delete_series';

describe('classifyRequest: admin paths stay admin, however they are spelt', () => {
  test('every trick lands on admin, and the upstream gets the path that was classified', () => {
    both(DELETE_SERIES, 'admin');
    both('/api/v1/%61dmin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/%41dmin/tsdb/delete_series', 'admin', '/api/v1/Admin/tsdb/delete_series');
    both('//api/v1/admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('///api///v1///admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api//v1/admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/./api/v1/admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/./admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query/../admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query/%2e%2e/admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query/%2E%2E/admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query/.%2e/admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query%2F..%2Fadmin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query%2f..%2fadmin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query/..%2Fadmin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query%5C..%5Cadmin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query\\..\\admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query;/../admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query/../../../../../api/v1/admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/../../api/v1/admin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/query/x/%2e%2e%2F%2e%2e%2fadmin/tsdb/delete_series', 'admin', DELETE_SERIES);
    both('/api/v1/admin/tsdb/delete_series?match[]=up', 'admin');
    both('/api/v1/admin/tsdb/delete_series?/../../query', 'admin');
    both('/api/v1/admin/tsdb/delete_series/', 'admin');
    both('/prometheus/api/v1/admin/tsdb/delete_series', 'admin');
    both('/graphite/api/v1/admin/tsdb/delete_series', 'admin');
    both('/API/V1/ADMIN/TSDB/DELETE_SERIES', 'admin');
    both('/api/v1/admin/tsdb/snapshot', 'admin');
    both('/api/v1/admin/tsdb/clean_tombstones', 'admin');
    both('/snapshot/create', 'admin');
    both('/snapshot/delete_all', 'admin');
    both('/internal/force_merge', 'admin');
    both('/internal/force_flush', 'admin');
    both('/internal/resetRollupResultCache', 'admin');
    both('/-/reload', 'admin');
    both('/-/quit', 'admin');
    both('/prometheus/-/reload', 'admin');
    both('/debug/pprof/heap', 'admin');
    both('/debug/pprof/', 'admin');
    both('/tags/delSeries', 'admin');
    both('/graphite/tags/delSeries', 'admin');
    both('/api/v1/admin/status/metric_names_stats/reset', 'admin');
  });

  test('a read path with something after it is no read path', () => {
    both('/api/v1/queryx', 'admin');
    both('/api/v1/query/', 'admin');
    both('/api/v1/query/admin', 'admin');
    both('/api/v1/query%3F', 'admin');
    both('/api/v1/query%3Fx=1', 'admin');
    both('/api/v1', 'admin');
    both('/api/v1/', 'admin');
    both('/api/v1/label//values', 'admin', '/api/v1/label/values');
    both('/api/v1/label/values', 'admin');
    both('/api/v1/write/../admin/tsdb/delete_series', 'admin', DELETE_SERIES);
  });

  test('unknown paths need admin', () => {
    both('/nothing-here', 'admin');
    both('/api/v2/query', 'admin');
    both('/prometheus', 'admin');
    both('/prometheus/', 'admin');
    both('/prometheus/prometheus/api/v1/query', 'admin');
    f('prometheus', '/prometheus/api/v1/query', 'admin');
    f('prometheus', '/vmui/', 'admin');
    f('prometheus', '/api/v1/label/a/b/values', 'admin');
    f('prometheus', '/api/v1/import', 'admin');
    f('victoriametrics', '/api/v1/read', 'admin');
    f('victoriametrics', '/graphite/targets', 'admin');
    f('victoriametrics', '/graphite/api/v1/write', 'admin');
    f('victoriametrics', '/prometheus/opentelemetry/v1/metrics', 'admin');
    f('victoriametrics', '/api/put', 'admin');
    f('victoriametrics', '/prometheus/metrics', 'admin');
  });
});

describe('classifyRequest: Prometheus (9090)', () => {
  test('queries, metadata, status, federation: read, GET and POST alike', () => {
    for (const method of ['GET', 'POST']) {
      f('prometheus', '/api/v1/query?query=up', 'read', undefined, method);
      f('prometheus', '/api/v1/query_range?query=up&start=0&end=1&step=1', 'read', undefined, method);
    }
    f('prometheus', '/api/v1/query_exemplars', 'read');
    f('prometheus', '/api/v1/format_query?query=up', 'read');
    f('prometheus', '/api/v1/parse_query?query=up', 'read');
    f('prometheus', '/api/v1/series?match[]=up', 'read');
    f('prometheus', '/api/v1/labels', 'read');
    f('prometheus', '/api/v1/label/job/values', 'read');
    f('prometheus', '/api/v1/label/__name__/values?match[]=up', 'read');
    f('prometheus', '/api/v1/metadata', 'read');
    f('prometheus', '/api/v1/read', 'read', undefined, 'POST');
    f('prometheus', '/api/v1/targets?state=active', 'read');
    f('prometheus', '/api/v1/targets/metadata', 'read');
    f('prometheus', '/api/v1/rules', 'read');
    f('prometheus', '/api/v1/alerts', 'read');
    f('prometheus', '/api/v1/alertmanagers', 'read');
    for (const status of ['config', 'flags', 'runtimeinfo', 'buildinfo', 'tsdb', 'walreplay']) {
      f('prometheus', `/api/v1/status/${status}`, 'read');
    }
    f('prometheus', '/api/v1/notifications', 'read');
    f('prometheus', '/federate?match[]={job="x"}', 'read');
    f('prometheus', '/metrics', 'read');
    f('prometheus', '/-/healthy', 'read');
    f('prometheus', '/-/ready', 'read', undefined, 'HEAD');
  });

  test('the web UI and its assets: read', () => {
    for (const page of [
      '/',
      '/graph',
      '/query',
      '/alerts',
      '/rules',
      '/targets',
      '/status',
      '/flags',
      '/config',
    ]) {
      f('prometheus', page, 'read');
    }
    f('prometheus', '/tsdb-status', 'read');
    f('prometheus', '/service-discovery', 'read');
    f('prometheus', '/agent', 'read');
    f('prometheus', '/assets/index-abc123.js', 'read');
    f('prometheus', '/static/js/main.js', 'read');
    f('prometheus', '/classic/static/js/graph.js', 'read');
    f('prometheus', '/classic/graph', 'read');
    f('prometheus', '/classic/', 'read');
    f('prometheus', '/graph/', 'read');
    f('prometheus', '/consoles/index.html', 'read');
    f('prometheus', '/favicon.ico', 'read');
    f('prometheus', '/manifest.json', 'read');
  });

  test('receivers: ingest', () => {
    f('prometheus', '/api/v1/write', 'ingest', undefined, 'POST');
    f('prometheus', '/api/v1/otlp/v1/metrics', 'ingest', undefined, 'POST');
  });

  test('DELETE /api/v1/series (the 2.x drop-series API) needs admin', () => {
    f('prometheus', '/api/v1/series?match[]=up', 'admin', undefined, 'DELETE');
    f('prometheus', '/api/v1/series', 'admin', undefined, 'delete');
    f('victoriametrics', '/api/v1/series', 'read', undefined, 'DELETE');
  });
});

describe('classifyRequest: VictoriaMetrics (8428)', () => {
  test('write APIs: ingest, with the /prometheus prefix where vminsert lists it', () => {
    for (const path of ['/api/v1/write', '/api/v1/push', '/api/v1/import', '/api/v1/import/csv']) {
      f('victoriametrics', path, 'ingest');
      f('victoriametrics', `/prometheus${path}`, 'ingest');
    }
    f('victoriametrics', '/api/v1/import/native', 'ingest');
    f('victoriametrics', '/api/v1/import/prometheus', 'ingest');
    f('victoriametrics', '/prometheus/api/v1/import/prometheus/metrics/job/node/instance/a', 'ingest');
    f('victoriametrics', '/write?db=x', 'ingest');
    f('victoriametrics', '/influx/write', 'ingest');
    f('victoriametrics', '/influx/api/v2/write?bucket=b', 'ingest');
    f('victoriametrics', '/api/v2/write', 'ingest');
    f('victoriametrics', '/query?q=show+databases', 'ingest');
    f('victoriametrics', '/ping', 'ingest');
    f('victoriametrics', '/opentelemetry/v1/metrics', 'ingest');
    f('victoriametrics', '/opentelemetry/api/v1/push', 'ingest');
    f('victoriametrics', '/datadog/api/v1/series', 'ingest');
    f('victoriametrics', '/datadog/api/v2/series/', 'ingest');
    f('victoriametrics', '/datadog/api/beta/sketches', 'ingest');
    f('victoriametrics', '/newrelic/infra/v2/metrics/events/bulk', 'ingest');
    f('victoriametrics', '/zabbixconnector/api/v1/history', 'ingest');
    f('victoriametrics', '/tags/tagSeries', 'ingest');
  });

  test('queries, export, status, federation, vmui: read, also under /prometheus and /graphite', () => {
    for (const under of ['', '/prometheus', '/graphite']) {
      f('victoriametrics', `${under}/api/v1/query?query=up`, 'read');
      f('victoriametrics', `${under}/api/v1/query_range`, 'read');
      f('victoriametrics', `${under}/api/v1/series`, 'read');
      f('victoriametrics', `${under}/api/v1/labels`, 'read');
      f('victoriametrics', `${under}/api/v1/label/job/values`, 'read');
      f('victoriametrics', `${under}/api/v1/export`, 'read');
      f('victoriametrics', `${under}/api/v1/export/csv`, 'read');
      f('victoriametrics', `${under}/api/v1/export/native`, 'read');
      f('victoriametrics', `${under}/api/v1/status/tsdb`, 'read');
      f('victoriametrics', `${under}/api/v1/status/active_queries`, 'read');
      f('victoriametrics', `${under}/api/v1/status/top_queries`, 'read');
      f('victoriametrics', `${under}/federate`, 'read');
      f('victoriametrics', `${under}/vmui/`, 'read');
    }
    f('victoriametrics', '/api/v1/label/a/b/values', 'read');
    f('victoriametrics', '/api/v1/metadata', 'read');
    f('victoriametrics', '/api/v1/query_exemplars', 'read');
    f('victoriametrics', '/api/v1/status/buildinfo', 'read');
    f('victoriametrics', '/vmui', 'read');
    f('victoriametrics', '/vmui/static/js/main.abc.js', 'read');
    f('victoriametrics', '/graph', 'read');
    f('victoriametrics', '/graph/#/?g0.expr=up', 'read', '/graph/%23/?g0.expr=up');
    f('victoriametrics', '/vmalert/groups', 'read');
    f('victoriametrics', '/render?target=a.b', 'read');
    f('victoriametrics', '/metrics/find/', 'read');
    f('victoriametrics', '/tags/some_tag', 'read');
    f('victoriametrics', '/tags/delSeries/', 'read');
    f('victoriametrics', '/functions/sumSeries', 'read');
    f('victoriametrics', '/targets', 'read');
    f('victoriametrics', '/prometheus/api/v1/targets', 'read');
    f('victoriametrics', '/static/css/bootstrap.min.css', 'read');
    f('victoriametrics', '/', 'read');
    f('victoriametrics', '/metrics', 'read');
    f('victoriametrics', '/health', 'read');
    f('victoriametrics', '/-/healthy', 'read');
    f('victoriametrics', '/-/ready', 'read');
    f('victoriametrics', '/ready', 'read');
  });
});

describe('classifyRequest: the OTLP ports', () => {
  test('every request needs ingest, and its target goes upstream as received', () => {
    for (const listener of ['otlp-grpc', 'otlp-http'] as const) {
      f(listener, '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export', 'ingest');
      f(listener, '/v1/traces', 'ingest');
      f(listener, DELETE_SERIES, 'ingest');
      f(listener, '/v1/%2e%2e/x', 'ingest');
      f(listener, '*', 'ingest', '*', 'OPTIONS');
    }
  });
});

describe('classifyRequest: what is forwarded', () => {
  test('the clean path re-encoded, then the query exactly as received', () => {
    both('/api/v1/%71uery?query=up', 'read', '/api/v1/query?query=up');
    both('/api/v1//query?query=up', 'read', '/api/v1/query?query=up');
    both('/api/v1/query?query=a%2F..%2F//b', 'read');
    both('/api/v1/query?', 'read');
    both('/api/v1/label/%6Aob/values?match[]=%7B%7D', 'read', '/api/v1/label/job/values?match[]=%7B%7D');
    both('/api/v1/label/a%20b/values', 'read');
    both('/api/v1/label/%C3%A9/values', 'read');
    both('/api/v1/label/%c3%a9/values', 'read', '/api/v1/label/%C3%A9/values');
    both('/api/v1/label/%7e/values', 'read', '/api/v1/label/~/values');
    both('/api/v1/label/a%25b/values', 'read');
    both('/api/v1/label/%3Bx%3D/values', 'read', '/api/v1/label/;x=/values');
    both('/api/v1/label/"x"/values', 'read', '/api/v1/label/%22x%22/values');
    both('/%252e%252e/api/v1/query', 'admin');
    both('/api/v1/query/.', 'read', '/api/v1/query');
    both('/api/v1/query/./', 'admin', '/api/v1/query/');
    both('/api/v1/query/..', 'admin', '/api/v1');
    both('/..', 'read', '/');
    both('/.%2e/', 'read', '/');
  });

  test('a trailing slash is kept as received', () => {
    f('victoriametrics', '/vmui/', 'read');
    f('victoriametrics', '/vmui//', 'read', '/vmui/');
    f('victoriametrics', '/vmui/./', 'read', '/vmui/');
    f('victoriametrics', '/vmui/.', 'read', '/vmui');
  });
});

describe('classifyRequest: refusals', () => {
  test('malformed escapes, control characters and targets that are no path get 400', () => {
    const malformed = 'bad request target: malformed percent-encoding';
    refused('/api/v1/query%zz', malformed);
    refused('/api/v1/query%4', malformed);
    refused('/api/v1/query%', malformed);
    refused('/api/v1/%%61dmin', malformed);
    refused('/api/v1/query%g0?query=up', malformed);
    const control = 'bad request target: control character in the path';
    refused('/api/v1/query%00', control);
    refused('/api/v1/query%0A', control);
    refused('/api/v1/query%0d%0aX-Injected:%201', control);
    refused('/api/v1/query%1f', control);
    refused('/api/v1/query%7F', control);
    refused('/api/v1/query\u0000', control);
    refused('/api/v1/\tquery', control);
    const invalid = 'bad request target: a character outside printable ASCII';
    refused('/api/v1/qu ery', invalid);
    refused('/api/v1/quéry', invalid);
    refused('/api/v1/query\u2028', invalid);
    const notAPath = 'bad request target: not a path starting with /';
    refused('', notAPath);
    refused('*', notAPath);
    refused('api/v1/query', notAPath);
    refused('http://upstream/api/v1/query', notAPath);
    refused('?query=up', notAPath);
  });

  test('refusals say nothing of the target', () => {
    const decision = classifyRequest('prometheus', 'GET', '/secret-key-abc%zz');
    assert.equal(decision.ok, false);
    assert.ok(!decision.ok && !decision.reason.includes('secret'));
  });
});

/** Every path a rule stands for, spelt out, with an example of a path it matches. */
function examples(rule: RouteRule): string[] {
  const paths: string[] = [];
  for (const under of ['', ...(rule.alsoUnder ?? [])]) {
    const path = under + rule.path;
    if (rule.match === 'prefix') paths.push(path, `${path}x/y.js`);
    else if (rule.match === 'pattern') paths.push(path.replace(/\{[a-z]+(\.\.\.)?\}/, 'job'));
    else paths.push(path, ...(rule.trailingSlash ? [`${path}/`] : []));
  }
  return paths;
}

describe('the route tables', () => {
  test('every rule classifies as its table says, under every prefix it lists', () => {
    for (const listener of HTTP_LISTENERS) {
      for (const rule of TABLES[listener]) {
        for (const path of examples(rule)) f(listener, path, rule.scope);
      }
    }
  });

  test('no path is listed twice, and a prefix never overrules a different exact rule by accident', () => {
    for (const listener of HTTP_LISTENERS) {
      const rules = TABLES[listener];
      const seen = new Set<string>();
      for (const rule of rules.filter((r) => r.match !== 'prefix')) {
        for (const path of examples(rule)) {
          assert.ok(!seen.has(path), `${listener}: ${path} listed twice`);
          seen.add(path);
        }
      }
      const prefixes = rules.filter((rule) => rule.match === 'prefix');
      for (const rule of rules.filter((r) => r.match !== 'prefix')) {
        for (const path of examples(rule)) {
          for (const other of prefixes) {
            const covers = ['', ...(other.alsoUnder ?? [])].some((u) => path.startsWith(u + other.path));
            // vmselect serves its exact /tags/ paths before a tag's values (isGraphiteTagsPath).
            const known = listener === 'victoriametrics' && other.path === '/tags/';
            assert.ok(
              !covers || other.scope === rule.scope || known,
              `${listener}: ${path} under ${other.path}`,
            );
          }
        }
      }
    }
  });

  test('every rule names its source and a known scope', () => {
    for (const rule of [...PROMETHEUS_ROUTES, ...VICTORIAMETRICS_ROUTES]) {
      assert.ok(SCOPES.includes(rule.scope), rule.path);
      assert.ok(rule.source.length > 0, rule.path);
      assert.ok(rule.path.startsWith('/'), rule.path);
    }
  });
});

/** The decoded path of a forwarded target, read back as the upstream's URL decoding does. */
function upstreamPath(target: string): string {
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  return path.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** Whether a table lists `path`, read from the tables with none of the module's lookup code. */
function listed(rules: readonly RouteRule[], path: string): boolean {
  return rules.some((rule) =>
    ['', ...(rule.alsoUnder ?? [])].some((u) => {
      const p = u + rule.path;
      if (rule.match === 'prefix') return path.startsWith(p);
      if (rule.match === 'exact') return path === p || (rule.trailingSlash === true && path === `${p}/`);
      const [head = '', tail = ''] = p.split(/\{[a-z]+(?:\.\.\.)?\}/);
      const middle = path.slice(head.length, path.length - tail.length);
      const spans = p.includes('...}');
      return (
        path.startsWith(head) && path.endsWith(tail) && middle.length > 0 && (spans || !middle.includes('/'))
      );
    }),
  );
}

const PIECES = [
  '/',
  '//',
  '.',
  '..',
  '%2e',
  '%2E',
  '%2F',
  '%2f',
  '%5C',
  '\\',
  ';',
  '%3B',
  '%3F',
  '?',
  '#',
  '%25',
  '%',
  '%zz',
  '%00',
  'api',
  'v1',
  'admin',
  '%61dmin',
  'tsdb',
  'delete_series',
  'query',
  'label',
  'values',
  'prometheus',
  'graphite',
  'vmui',
  'tags',
  'delSeries',
  'snapshot',
  'debug',
  'pprof',
  '-',
  'write',
  'x',
];
const junkTarget = fc
  .array(fc.oneof(fc.constantFrom(...PIECES), fc.string({ maxLength: 3 })), { maxLength: 14 })
  .map((parts) => `/${parts.join('')}`);

describe('classifyRequest: properties', () => {
  test('never throws, on any input', () => {
    fc.assert(
      fc.property(fc.constantFrom(...LISTENERS), fc.string(), fc.string({ unit: 'binary' }), (l, m, t) => {
        const decision: RouteDecision = classifyRequest(l, m, t);
        assert.equal(typeof decision.ok, 'boolean');
      }),
      { numRuns: 2000 },
    );
  });

  test('a junk path is admin or refused unless its clean path is in a table; forwarding is stable', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...HTTP_LISTENERS),
        junkTarget,
        fc.constantFrom('GET', 'POST'),
        (l, t, m) => {
          const decision = classifyRequest(l, m, t);
          if (!decision.ok) return;
          const path = upstreamPath(decision.target);
          assert.ok(!/\/\/|\/\.\.?(\/|$)|\\/.test(path), `${t} forwarded as ${decision.target}`);
          assert.ok(
            /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*$/.test(decision.target.split('?')[0] ?? ''),
          );
          if (decision.scope !== 'admin')
            assert.ok(listed(TABLES[l], path), `${t} classified ${decision.scope}`);
          // What the upstream gets classifies the same and is forwarded unchanged.
          assert.deepEqual(classifyRequest(l, m, decision.target), decision, t);
        },
      ),
      { numRuns: 5000 },
    );
  });

  test('no junk and no spelling of ../ in front of an admin path makes it less than admin', () => {
    const climb = fc.constantFrom(
      '/..',
      '/%2e%2e',
      '/%2E.',
      '%2F..',
      '%2f%2e%2e',
      '\\..',
      '%5C..',
      '/.%2e/.',
    );
    const noQuery = junkTarget.filter((t) => !t.includes('?'));
    fc.assert(
      fc.property(
        fc.constantFrom(...HTTP_LISTENERS),
        noQuery,
        fc.array(climb, { minLength: 50 }),
        (l, t, up) => {
          const decision = classifyRequest(l, 'POST', `${t}${up.join('')}${DELETE_SERIES}`);
          if (decision.ok) assert.deepEqual(decision, { ok: true, scope: 'admin', target: DELETE_SERIES }, t);
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('docs/security.md', () => {
  test('its route tables are the generated ones (npm run docs:routes rewrites them)', () => {
    const doc = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
    const start = doc.indexOf(ROUTE_SCOPES_START);
    const end = doc.indexOf(ROUTE_SCOPES_END);
    assert.ok(start !== -1 && end > start, 'docs/security.md has the route-scopes markers');
    assert.equal(
      doc.slice(start + ROUTE_SCOPES_START.length, end).trim(),
      routeTableMarkdown(),
      'docs/security.md is out of date: run npm run docs:routes',
    );
    assert.equal(withRouteTable(doc), doc);
    assert.equal(withRouteTable('no markers'), null);
  });
});
