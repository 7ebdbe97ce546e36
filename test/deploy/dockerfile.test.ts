import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  closedPortUrl,
  mapping,
  READY_URL,
  REPO_ROOT,
  readRepoFile,
  runReadyProbe,
  StandInAdmin,
} from './support.js';

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Dockerfile instructions by stage, with line continuations joined and ARG defaults substituted in FROM. */
function parseDockerfile(text: string): Stage[] {
  const logicalLines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of logicalLines) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    const upper = keyword.toUpperCase();
    if (upper === 'FROM') {
      const [image = '', as, name] = args.split(/\s+/);
      const resolved = image.replace(
        /\$\{(\w+)\}|\$(\w+)/g,
        (_, braced, bare) => globalArgs.get(braced ?? bare) ?? '',
      );
      stages.push({ image: resolved, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (upper === 'ARG' && stages.length === 0) {
      const [name = '', value = ''] = args.split('=');
      globalArgs.set(name, value);
    } else {
      stages.at(-1)?.instructions.push({ keyword: upper, args });
    }
  }
  return stages;
}

function argsOf(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword).map(({ args }) => args);
}

/** Exec-form (JSON array) arguments of HEALTHCHECK CMD, ENTRYPOINT or CMD. */
function execForm(args: string): string[] {
  const json = args.slice(args.indexOf('['));
  return JSON.parse(json) as string[];
}

const packageJson = mapping(JSON.parse(readRepoFile('package.json')), 'package.json');
const scripts = mapping(packageJson.scripts, 'scripts') as Record<string, string>;
const stages = parseDockerfile(readRepoFile('Dockerfile'));
const build = stages[0]!;
const runtime = stages.at(-1)!;

describe('Dockerfile', () => {
  it('has a build stage and a runtime stage, both on Debian bookworm slim (glibc: bcrypt prebuilds load)', () => {
    assert.equal(stages.length, 2);
    assert.equal(build.name, 'build');
    for (const stage of stages) assert.match(stage.image, /^node:\d+-bookworm-slim$/);
  });

  it('the suite runs on the Node major the image ships, and package.json engines allow it', () => {
    const major = /^node:(\d+)-/.exec(stages[0]?.image ?? '')?.[1];
    assert.equal(
      process.versions.node.split('.')[0],
      major,
      `the suite runs on Node ${process.versions.node}`,
    );
    assert.match(mapping(packageJson.engines, 'engines').node as string, new RegExp(`^>=${major}(\\.|$)`));
  });

  it('builds with the npm scripts CI runs: npm ci, then npm run build', () => {
    const runs = argsOf(build, 'RUN');
    const ci = runs.findIndex((run) => /^npm ci\b/.test(run) && !run.includes('--omit'));
    const buildRun = runs.findIndex((run) => /^npm run build\b/.test(run));
    assert.ok(ci >= 0 && buildRun > ci, `npm ci then npm run build, got ${JSON.stringify(runs)}`);
    assert.equal(scripts.build, 'tsc -p tsconfig.build.json');
    const tsconfigBuild = mapping(JSON.parse(readRepoFile('tsconfig.build.json')), 'tsconfig.build.json');
    assert.equal(mapping(tsconfigBuild.compilerOptions, 'compilerOptions').outDir, 'dist');
  });

  it('installs production dependencies only in the runtime stage and checks that bcrypt loads', () => {
    const runs = argsOf(runtime, 'RUN').join('\n');
    assert.match(runs, /npm ci --omit=dev/);
    assert.doesNotMatch(runs, /npm ci(?! --omit=dev)/, 'no full npm ci in the runtime stage');
    assert.match(runs, /require\('bcrypt'\)/);
    assert.ok(
      argsOf(runtime, 'COPY').some((copy) => /^--from=build \/app\/dist \.\/dist$/.test(copy)),
      'the compiled dist/ comes from the build stage',
    );
  });

  it('copies only files that exist and that .dockerignore lets through', () => {
    const allowed = readRepoFile('.dockerignore')
      .split('\n')
      .filter((line) => line.startsWith('!'))
      .map((line) => line.slice(1).replace(/\/$/, ''));
    for (const copy of argsOf(build, 'COPY').concat(argsOf(runtime, 'COPY'))) {
      if (copy.startsWith('--from=')) continue;
      const sources = copy.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        const path = source.replace(/\/$/, '');
        assert.ok(existsSync(join(REPO_ROOT, path)), `COPY ${path}: missing`);
        assert.ok(allowed.includes(path), `COPY ${path}: excluded by .dockerignore`);
      }
    }
  });

  it('keeps .env and build output out of the build context', () => {
    const ignore = readRepoFile('.dockerignore').split('\n');
    assert.equal(
      ignore.find((line) => line.trim() !== '' && !line.startsWith('#')),
      '*',
      'deny by default',
    );
    for (const secret of ['.env', '**/.env']) assert.ok(ignore.includes(secret), secret);
    assert.ok(!ignore.some((line) => /^!(\.env|node_modules|dist)/.test(line)));
  });

  it('runs as a non-root user under tini, as `edge-gateway serve` (the npm start command)', () => {
    const users = argsOf(runtime, 'USER');
    assert.equal(users.length, 1);
    assert.ok(!['root', '0', '0:0'].includes(users[0]!), 'not root');
    assert.match(argsOf(runtime, 'RUN').join('\n'), /apt-get install -y --no-install-recommends tini/);
    const entrypoint = execForm(argsOf(runtime, 'ENTRYPOINT')[0]!);
    const command = execForm(argsOf(runtime, 'CMD')[0]!);
    assert.deepEqual(entrypoint.slice(0, 2), ['/usr/bin/tini', '--']);
    assert.equal([...entrypoint.slice(2), ...command].join(' '), scripts.start);
    assert.equal(mapping(packageJson.bin, 'bin')['edge-gateway'], 'dist/cli.js');
  });

  it('exposes the four data ports and stops with SIGTERM', () => {
    const exposed = argsOf(runtime, 'EXPOSE').flatMap((args) => args.split(/\s+/));
    assert.deepEqual(exposed.sort(), ['4317', '4318', '8428', '9090']);
    assert.deepEqual(argsOf(runtime, 'STOPSIGNAL'), ['SIGTERM']);
  });

  it('reads the env file from the mounted directory /etc/edge-gateway by default', () => {
    assert.match(argsOf(runtime, 'ENV').join(' '), /GATEWAY_ENV_FILE=\/etc\/edge-gateway\/\.env/);
  });
});

describe('Dockerfile HEALTHCHECK (node -e, no curl in the image)', () => {
  const healthcheck = argsOf(runtime, 'HEALTHCHECK');
  const command = execForm(healthcheck[0] ?? '[]');
  const admin = new StandInAdmin();
  let url: string;

  before(async () => {
    url = await admin.start();
  });

  after(() => admin.stop());

  it(`asks ${READY_URL} with node -e`, () => {
    assert.equal(healthcheck.length, 1);
    assert.deepEqual(command.slice(0, 2), ['node', '-e']);
    assert.ok(command[2]!.includes(READY_URL));
  });

  it('is healthy when /ready answers 200, unhealthy on 503 and when nothing listens', async () => {
    admin.status = 200;
    assert.equal(await runReadyProbe(command, url), 0);
    admin.status = 503;
    assert.equal(await runReadyProbe(command, url), 1);
    assert.equal(await runReadyProbe(command, await closedPortUrl()), 1);
  });
});
