import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  list,
  mapping,
  PROFILE_COMPONENTS,
  PROFILES,
  type Profile,
  REPO_ROOT,
  readRepoYaml,
  runTool,
} from './support.js';

const CONFIG_DIR = join('config', 'prometheus');
const PROFILES_WITH_PROMETHEUS = PROFILES.filter((profile) =>
  PROFILE_COMPONENTS[profile].includes('prometheus'),
);

function scrapeTargets(config: Record<string, unknown>): string[] {
  return list(config.scrape_configs ?? [], 'scrape_configs').flatMap((job) =>
    list(mapping(job, 'job').static_configs ?? [], 'static_configs').flatMap(
      (group) => list(mapping(group, 'static_config').targets, 'targets') as string[],
    ),
  );
}

describe('config/prometheus', () => {
  it('holds one file per profile that runs Prometheus, and nothing else', () => {
    const files = readdirSync(join(REPO_ROOT, CONFIG_DIR), { withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name)
      .sort();
    assert.deepEqual(files, PROFILES_WITH_PROMETHEUS.map((profile) => `${profile}.yaml`).sort());
  });

  for (const profile of PROFILES_WITH_PROMETHEUS) {
    describe(`${profile}.yaml`, () => {
      const file = join(CONFIG_DIR, `${profile}.yaml`);
      const config = mapping(readRepoYaml(file), file);
      const components = PROFILE_COMPONENTS[profile as Profile];

      it('passes promtool check config', () => {
        const result = runTool('promtool', ['check', 'config', join(REPO_ROOT, file)]);
        assert.equal(result.status, 0, `promtool check config ${file}:\n${result.stdout}${result.stderr}`);
      });

      it('scrapes every 10 s, and only services that this profile runs', () => {
        assert.equal(mapping(config.global, 'global').scrape_interval, '10s');
        for (const target of scrapeTargets(config)) {
          const host = target.split(':')[0] ?? '';
          assert.ok(
            host === 'localhost' || host === 'gateway' || (components as readonly string[]).includes(host),
            `${target}: ${host} does not run in ${profile}`,
          );
        }
      });

      it('scrapes the collector (8889 and 8888) exactly when the profile runs it', () => {
        const targets = scrapeTargets(config);
        const expected = components.includes('otel-collector')
          ? ['otel-collector:8888', 'otel-collector:8889']
          : [];
        assert.deepEqual(targets.filter((target) => target.startsWith('otel-collector:')).sort(), expected);
      });

      // Issue 15: every Prometheus of the stack watches the gateway.
      it('scrapes the gateway as job edge-gateway on gateway:9902 and loads its alert rules', () => {
        const jobs = list(config.scrape_configs ?? [], 'scrape_configs').map((job) => mapping(job, 'job'));
        const gateway = jobs.find((job) => job.job_name === 'edge-gateway');
        assert.ok(gateway, 'a scrape job named edge-gateway');
        assert.deepEqual(
          list(gateway.static_configs, 'static_configs').flatMap(
            (group) => list(mapping(group, 'static_config').targets, 'targets') as string[],
          ),
          ['gateway:9902'],
        );
        assert.deepEqual(config.rule_files, ['rules/edge-gateway.yaml']);
        // promtool check config (above) has checked the rules through this path, relative to
        // the file: the same path in the repository and under /etc/prometheus in the container.
        const result = runTool('promtool', ['check', 'config', join(REPO_ROOT, file)]);
        assert.match(result.stdout, /SUCCESS: \d+ rules found/);
      });

      it('remote_writes to VictoriaMetrics exactly when the profile runs it', () => {
        const urls = list(config.remote_write ?? [], 'remote_write').map(
          (entry) => mapping(entry, 'remote_write').url,
        );
        const expected = components.includes('victoriametrics')
          ? ['http://victoriametrics:8428/api/v1/write']
          : [];
        assert.deepEqual(urls, expected);
      });
    });
  }
});
