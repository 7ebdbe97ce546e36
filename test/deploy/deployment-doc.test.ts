import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  listenersOffIn,
  PROFILE_COMPONENTS,
  PROFILES,
  type Profile,
  REPO_ROOT,
  readRepoFile,
} from './support.js';

const DOC = 'docs/deployment.md';
const text = readRepoFile(DOC);
/** Both documents carry the profile table; both must say what the compose checks assert. */
const TABLE_DOCS = [DOC, 'README.md'] as const;

const LISTENER_PORTS: Readonly<Record<string, string[]>> = {
  OTLP_GRPC: ['4317'],
  OTLP_HTTP: ['4318'],
  PROMETHEUS: ['9090'],
  VICTORIAMETRICS: ['8428'],
};

interface Row {
  readonly services: string[];
  readonly offPorts: string[];
  readonly offVariables: string[];
  readonly prometheusConfig: string | undefined;
}

/** The rows of the profile table: `| \`profile\` | services | listeners switched off | Prometheus config |`. */
function profileTable(docText: string): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const line of docText.split('\n')) {
    const match = /^\|\s*`([a-z-]+)`\s*\|(.*)\|(.*)\|(.*)\|$/.exec(line);
    if (!match) continue;
    const [, profile = '', services = '', off = '', config = ''] = match;
    rows.set(profile, {
      services: services.split(',').map((service) => service.trim()),
      offPorts: off.replace(/\(.*\)/, '').match(/\d{4}/g) ?? [],
      offVariables: [...off.matchAll(/([A-Z_]+)_UPSTREAM=off/g)].map((variable) => variable[1]!),
      prometheusConfig: /`(config\/prometheus\/[^`]+)`/.exec(config)?.[1],
    });
  }
  return rows;
}

for (const doc of TABLE_DOCS)
  describe(`${doc}: the profile table says what the compose checks assert`, () => {
    const table = profileTable(readRepoFile(doc));

    it('has a row for each of the six profiles and no other', () => {
      assert.deepEqual([...table.keys()].sort(), [...PROFILES].sort());
    });

    for (const profile of PROFILES) {
      it(`${profile}: services, listeners switched off, Prometheus config`, () => {
        const row = table.get(profile)!;
        assert.deepEqual(row.services.sort(), ['gateway', ...PROFILE_COMPONENTS[profile as Profile]].sort());
        const off = listenersOffIn(profile);
        assert.deepEqual(row.offVariables, off);
        assert.deepEqual(
          row.offPorts,
          off.flatMap((prefix) => LISTENER_PORTS[prefix] ?? []),
        );
        const expectedConfig = PROFILE_COMPONENTS[profile].includes('prometheus')
          ? `config/prometheus/${profile}.yaml`
          : undefined;
        assert.equal(row.prometheusConfig, expectedConfig);
        if (expectedConfig) assert.ok(existsSync(join(REPO_ROOT, expectedConfig)));
      });
    }
  });

describe(`${DOC}: "What CI checks" lists the deploy tests that exist`, () => {
  it('names every test file in test/deploy, and only those', () => {
    const section = text.slice(text.indexOf('## What CI checks'));
    const named = [...section.matchAll(/`([\w-]+\.test\.ts)`/g)].map((match) => match[1]!).sort();
    const present = readdirSync(join(REPO_ROOT, 'test', 'deploy'))
      .filter((file) => file.endsWith('.test.ts'))
      .sort();
    assert.deepEqual(named, present);
  });
});
