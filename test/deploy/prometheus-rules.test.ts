import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { list, mapping, REPO_ROOT, readRepoFile, readRepoYaml, runTool } from './support.js';

// Issue 15: the gateway's alert rules, checked and unit-tested by the real promtool (Debian's
// prometheus package; a missing promtool fails these tests, see runTool).
const RULES = join('config', 'prometheus', 'rules', 'edge-gateway.yaml');
const UNIT_TESTS = join('test', 'deploy', 'prometheus-rules', 'edge-gateway.test.yaml');

function alertRules(): Record<string, unknown>[] {
  const groups = list(mapping(readRepoYaml(RULES), RULES).groups, 'groups');
  return groups.flatMap((group) =>
    list(mapping(group, 'group').rules, 'rules').map((rule) => mapping(rule, 'rule')),
  );
}

describe('config/prometheus/rules/edge-gateway.yaml', () => {
  it('passes promtool check rules', () => {
    const result = runTool('promtool', ['check', 'rules', join(REPO_ROOT, RULES)]);
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /SUCCESS: \d+ rules found/);
  });

  it('passes its promtool unit tests (each alert fires for one series and not for another)', () => {
    const result = runTool('promtool', ['test', 'rules', join(REPO_ROOT, UNIT_TESTS)]);
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /SUCCESS/);
  });

  it('alerts on everything issue 15 names, each telling the operator what to do', () => {
    const rules = alertRules();
    const expressions = rules.map((rule) => String(rule.expr)).join('\n');
    for (const metric of [
      'gateway_upstream_errors_total',
      'gateway_requests_total{code=~"5.."}',
      'gateway_config_last_reload_successful == 0',
      'gateway_auth_failures_total',
      '_limit_reached_total',
      'gateway_requests_in_flight',
      'gateway_credential_expiry_timestamp_seconds - time() < 7 * 86400',
      'gateway_tls_certificate_expiry_timestamp_seconds - time() < 14 * 86400',
      'gateway_worker_restarts_total',
    ])
      assert.ok(expressions.includes(metric), `no alert uses ${metric}`);
    for (const rule of rules) {
      const annotations = mapping(rule.annotations, `${rule.alert} annotations`);
      assert.ok(String(annotations.summary ?? '').length > 10, `${rule.alert}: summary`);
      assert.ok(String(annotations.description ?? '').length > 60, `${rule.alert}: description`);
    }
  });

  it('has a unit test that makes every alert fire', () => {
    const tested = new Set(
      [...readRepoFile(UNIT_TESTS).matchAll(/alertname: (\w+)\n\s+eval_time: \S+\n\s+exp_alerts:\n/g)].map(
        (match) => match[1],
      ),
    );
    for (const rule of alertRules())
      assert.ok(tested.has(String(rule.alert)), `${rule.alert} is never shown firing`);
  });
});
