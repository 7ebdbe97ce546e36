import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { list, mapping, readRepoYaml } from './support.js';

const FILE = 'config/otel-collector-config.yaml';

/** Collector durations as the spanmetrics connector writes them (1ms, 2.5s), in milliseconds. */
function milliseconds(duration: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(duration);
  assert.ok(match, `bucket ${duration} is not a duration in ms or s`);
  return Number(match[1]) * (match[2] === 's' ? 1000 : 1);
}

describe(FILE, () => {
  const config = mapping(readRepoYaml(FILE), FILE);
  const service = mapping(config.service, 'service');
  const pipelines = mapping(service.pipelines, 'service.pipelines');

  it('receives OTLP over gRPC on 4317 and HTTP on 4318, reachable from the gateway', () => {
    const protocols = mapping(
      mapping(mapping(config.receivers, 'receivers').otlp, 'otlp').protocols,
      'protocols',
    );
    assert.equal(mapping(protocols.grpc, 'grpc').endpoint, '0.0.0.0:4317');
    assert.equal(mapping(protocols.http, 'http').endpoint, '0.0.0.0:4318');
  });

  it('batches spans', () => {
    assert.ok('batch' in mapping(config.processors, 'processors'));
    assert.deepEqual(mapping(pipelines.traces, 'traces').processors, ['batch']);
  });

  it('turns traces into metrics with spanmetrics: buckets 1 ms to 10 s, dimensions env and component', () => {
    const spanmetrics = mapping(mapping(config.connectors, 'connectors').spanmetrics, 'spanmetrics');
    const buckets = list(
      mapping(mapping(spanmetrics.histogram, 'histogram').explicit, 'explicit').buckets,
      'buckets',
    ) as string[];
    const values = buckets.map(milliseconds);
    assert.equal(values[0], 1, 'first bucket 1ms');
    assert.equal(values.at(-1), 10_000, 'last bucket 10s');
    for (let i = 1; i < values.length; i++) assert.ok(values[i]! > values[i - 1]!, 'buckets increase');
    const dimensions = list(spanmetrics.dimensions, 'dimensions').map(
      (entry) => mapping(entry, 'dimension').name,
    );
    assert.deepEqual(dimensions, ['env', 'component']);
  });

  it('exports the span metrics for Prometheus on 0.0.0.0:8889 under the namespace llm', () => {
    const prometheus = mapping(mapping(config.exporters, 'exporters').prometheus, 'prometheus exporter');
    assert.equal(prometheus.endpoint, '0.0.0.0:8889');
    assert.equal(prometheus.namespace, 'llm');
  });

  it('wires the pipelines: otlp -> batch -> spanmetrics -> prometheus', () => {
    const traces = mapping(pipelines.traces, 'traces');
    const metrics = mapping(pipelines.metrics, 'metrics');
    assert.deepEqual(traces.receivers, ['otlp']);
    assert.deepEqual(traces.exporters, ['spanmetrics']);
    assert.deepEqual(metrics.receivers, ['spanmetrics']);
    assert.deepEqual(metrics.exporters, ['prometheus']);
  });

  it('serves its own metrics on 8888 for the otel-collector-internal job', () => {
    const readers = list(
      mapping(mapping(service.telemetry, 'telemetry').metrics, 'metrics').readers,
      'readers',
    );
    const exporters = readers.map((reader) =>
      mapping(mapping(mapping(reader, 'reader').pull, 'pull').exporter, 'exporter'),
    );
    assert.ok(exporters.some((exporter) => mapping(exporter.prometheus, 'prometheus').port === 8888));
  });

  it('answers health checks on 13133 at /health/status', () => {
    const healthCheck = mapping(mapping(config.extensions, 'extensions').health_check, 'health_check');
    assert.equal(healthCheck.endpoint, '0.0.0.0:13133');
    assert.equal(healthCheck.path, '/health/status');
    assert.ok((service.extensions as string[]).includes('health_check'));
  });
});
