import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'dotenv';
import { envFilePath } from '../../src/config/env-source.js';
import { parseGatewayConfig } from '../../src/config/parse.js';
import { GATEWAY_ENV_FILE, SETTINGS } from '../../src/config/settings.js';
import { REPO_ROOT, readRepoFile } from './support.js';

const EXAMPLE = readRepoFile('.env.example');
const COMPOSE = readRepoFile('docker-compose.yaml');

/** A setting line: `NAME=value`, or `# NAME=value` for a default left commented out. */
const SETTING_LINE = /^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$/;

function documentedSettings(): Map<string, string> {
  const settings = new Map<string, string>();
  for (const line of EXAMPLE.split('\n')) {
    const match = SETTING_LINE.exec(line);
    if (match) settings.set(match[1]!, match[2]!);
  }
  return settings;
}

/** Every variable the configuration parser reads, found by handing it an environment that records reads. */
function variablesReadByParser(): Set<string> {
  const read = new Set<string>();
  const recorder = new Proxy<Record<string, string | undefined>>(
    {},
    {
      get(_target, name) {
        if (typeof name === 'string') read.add(name);
        return undefined;
      },
    },
  );
  parseGatewayConfig(recorder, '.env');
  envFilePath(recorder);
  return read;
}

/** Variables read straight from the environment elsewhere in src/ (process.env.X, processEnv.X). */
function variablesReadInSource(dir = join(REPO_ROOT, 'src')): Set<string> {
  const names = new Set<string>();
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) {
      for (const name of variablesReadInSource(path)) names.add(name);
    } else if (entry.endsWith('.ts')) {
      for (const match of readFileSync(path, 'utf8').matchAll(
        /\b(?:process\.env|processEnv)\.([A-Z][A-Z0-9_]+)/g,
      )) {
        names.add(match[1]!);
      }
    }
  }
  return names;
}

/** Variables docker-compose.yaml interpolates (${NAME...}): compose reads them, not the gateway. */
function composeVariables(): Set<string> {
  return new Set([...COMPOSE.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((match) => match[1]!));
}

describe('.env.example', () => {
  it('documents every variable the gateway reads', () => {
    const mentioned = new Set([...EXAMPLE.matchAll(/\b([A-Z][A-Z0-9_]+)=/g)].map((match) => match[1]!));
    for (const name of [...variablesReadByParser(), ...variablesReadInSource()]) {
      if (name === 'NODE_ENV') continue;
      assert.ok(
        mentioned.has(name),
        `${name} is read by src/ but not documented in .env.example: add "# ${name}=<default>" with a comment`,
      );
    }
  });

  it('documents every variable docker-compose.yaml interpolates', () => {
    const settings = documentedSettings();
    for (const name of composeVariables()) assert.ok(settings.has(name), `${name} missing from .env.example`);
  });

  it('documents nothing that nobody reads', () => {
    const known = new Set([...variablesReadByParser(), ...variablesReadInSource(), ...composeVariables()]);
    for (const name of documentedSettings().keys()) assert.ok(known.has(name), `${name} is read by nothing`);
  });

  it('shows the real defaults: the documented values configure the gateway exactly as no .env does', () => {
    const documented = Object.fromEntries(documentedSettings());
    const asDocumented = parseGatewayConfig(documented, '.env');
    const withNothing = parseGatewayConfig({}, '.env');
    assert.ok(asDocumented.ok, JSON.stringify(asDocumented));
    assert.ok(withNothing.ok);
    assert.equal(JSON.stringify(asDocumented.config), JSON.stringify(withNothing.config));
  });

  it('copied to .env as it is, changes nothing and switches no listener back on', () => {
    const active = parse(EXAMPLE);
    assert.equal(
      JSON.stringify(parseGatewayConfig(active, '.env')),
      JSON.stringify(parseGatewayConfig({}, '.env')),
    );
    for (const name of Object.keys(active)) {
      assert.doesNotMatch(name, /_UPSTREAM$/, `${name} set in .env would override the profile's "off"`);
    }
  });

  // Issue 11 item 11: it called UPSTREAM_TIMEOUT the time for a whole upstream exchange.
  it('describes UPSTREAM_TIMEOUT as the wait for headers and for each silence in a body', () => {
    const lines = EXAMPLE.split('\n');
    const at = lines.findIndex((line) => line.startsWith('# UPSTREAM_TIMEOUT='));
    const comment = lines.slice(Math.max(0, at - 3), at).join(' ');
    assert.match(comment, /response headers/);
    assert.match(comment, /each silence/);
    assert.doesNotMatch(comment, /Time for a whole upstream exchange/);
  });
});

/** The comment lines right above a setting's line. */
function commentAbove(name: string): string {
  const lines = EXAMPLE.split('\n');
  const at = lines.findIndex((line) => SETTING_LINE.exec(line)?.[1] === name);
  const comment: string[] = [];
  for (let i = at - 1; i >= 0 && /^# (?![A-Z][A-Z0-9_]*=)/.test(lines[i] ?? ''); i--)
    comment.unshift(lines[i] ?? '');
  return comment.join(' ');
}

describe('.env.example and the settings table (issue 11 item 11)', () => {
  it("shows every setting of the table with the table's default", () => {
    const documented = documentedSettings();
    // GATEWAY_ENV_FILE says where this file is: the header explains it, a line in the file could not set it.
    for (const setting of SETTINGS.filter((candidate) => candidate !== GATEWAY_ENV_FILE)) {
      assert.equal(documented.get(setting.name), setting.default, `${setting.name} in .env.example`);
    }
  });

  it('documents the settings added with issue 10 and 11', () => {
    for (const name of ['CLIENT_SEND_TIMEOUT', 'MAX_CONNECTIONS_PER_CLIENT', 'AUTH_FAILURE_LIMIT_EXEMPT']) {
      assert.ok(commentAbove(name).length > 40, `${name} has a comment saying what it does`);
    }
  });
});
