import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import {
  type Component,
  LISTENER_COMPONENT,
  list,
  listenersOffIn,
  mapping,
  PROFILE_COMPONENTS,
  PROFILES,
  type Profile,
  REPO_ROOT,
  readRepoFile,
  readRepoYaml,
  runToolAsync,
} from './support.js';

type Service = Record<string, unknown>;

const GATEWAY_PORTS = [4317, 4318, 8428, 9090];
const ENV_DIR_IN_CONTAINER = '/etc/edge-gateway';

let workDir: string;
const renderedByProfile = new Map<Profile, Record<string, unknown>>();
let renderedWithoutComposeProfiles: Record<string, unknown>;

/**
 * A copy of docker-compose.yaml and config/ in a temporary directory, so that a developer's own
 * .env in the repository cannot change what is rendered. The one edit: `required: false` is
 * removed from depends_on entries, because Debian's docker-compose (v1) validates against a schema
 * that predates it. Compose v2 honours it; the raw file's dependencies are checked separately below.
 */
function prepareCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'edge-gateway-compose-'));
  cpSync(join(REPO_ROOT, 'config'), join(dir, 'config'), { recursive: true });
  const compose = mapping(parse(readRepoFile('docker-compose.yaml')), 'docker-compose.yaml');
  for (const service of Object.values(mapping(compose.services, 'services'))) {
    const dependsOn = (service as Service).depends_on;
    if (dependsOn && !Array.isArray(dependsOn)) {
      for (const dependency of Object.values(mapping(dependsOn, 'depends_on'))) {
        delete (dependency as Record<string, unknown>).required;
      }
    }
  }
  writeFileSync(join(dir, 'docker-compose.yaml'), stringify(compose));
  return dir;
}

/** `docker-compose --profile P config`, with COMPOSE_PROFILES as the operator sets it (or unset). */
async function renderCompose(
  profile: Profile,
  composeProfiles: string | undefined,
  extraProfiles: readonly string[] = [],
): Promise<Record<string, unknown>> {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: workDir };
  if (composeProfiles !== undefined) env.COMPOSE_PROFILES = composeProfiles;
  const extra = extraProfiles.flatMap((name) => ['--profile', name]);
  const args = ['--project-name', 'edge-gateway', '--profile', profile, ...extra, 'config'];
  const result = await runToolAsync('docker-compose', args, { cwd: workDir, env });
  assert.equal(result.status, 0, `docker-compose --profile ${profile} config failed:\n${result.stderr}`);
  return mapping(parse(result.stdout), 'rendered compose file');
}

/** Compose's rule: a service runs when it has no profiles or one of them is active. */
function enabledServices(
  rendered: Record<string, unknown>,
  profile: Profile,
  extraProfiles: readonly string[] = [],
): Map<string, Service> {
  const enabled = new Map<string, Service>();
  const active = [profile, ...extraProfiles];
  for (const [name, value] of Object.entries(mapping(rendered.services, 'services'))) {
    const service = mapping(value, `services.${name}`);
    const profiles = (service.profiles as string[] | undefined) ?? [];
    if (profiles.length === 0 || profiles.some((candidate) => active.includes(candidate)))
      enabled.set(name, service);
  }
  return enabled;
}

interface PublishedPort {
  readonly hostIp: string;
  readonly published: number;
  readonly target: number;
}

/** docker-compose v1 prints ports either as `{published, target}` or as `ip:host:container/proto`. */
function publishedPorts(service: Service): PublishedPort[] {
  return ((service.ports as unknown[] | undefined) ?? []).map((port) => {
    if (typeof port === 'string') {
      const match = /^(?:(.+):)?(\d+):(\d+)(?:\/\w+)?$/.exec(port);
      assert.ok(match, `unexpected port syntax ${port}`);
      return { hostIp: match[1] ?? '', published: Number(match[2]), target: Number(match[3]) };
    }
    const long = mapping(port, 'port');
    return {
      hostIp: typeof long.host_ip === 'string' ? long.host_ip : '',
      published: Number(long.published),
      target: Number(long.target),
    };
  });
}

function isPublicInterface(hostIp: string): boolean {
  return hostIp === '' || hostIp === '0.0.0.0' || hostIp === '::' || hostIp === '[::]';
}

interface BindMount {
  readonly source: string;
  readonly target: string;
}

function bindMounts(service: Service): BindMount[] {
  const mounts: BindMount[] = [];
  for (const volume of (service.volumes as unknown[] | undefined) ?? []) {
    if (typeof volume === 'string') {
      const [source = '', target = ''] = volume.split(':');
      if (isAbsolute(source) || source.startsWith('.')) mounts.push({ source, target });
    } else {
      const long = mapping(volume, 'volume');
      if (long.type === 'bind') mounts.push({ source: String(long.source), target: String(long.target) });
    }
  }
  return mounts;
}

function namedVolumes(service: Service): string[] {
  return ((service.volumes as unknown[] | undefined) ?? [])
    .filter((volume): volume is string => typeof volume === 'string')
    .map((volume) => volume.split(':')[0] ?? '')
    .filter((source) => !isAbsolute(source) && !source.startsWith('.'));
}

function environmentOf(service: Service): Record<string, string> {
  return mapping(service.environment ?? {}, 'environment') as Record<string, string>;
}

before(async () => {
  workDir = prepareCopy();
  const renders = PROFILES.map(async (profile) =>
    renderedByProfile.set(profile, await renderCompose(profile, profile)),
  );
  const readmeCommand = renderCompose('full', undefined).then((rendered) => {
    renderedWithoutComposeProfiles = rendered;
  });
  await Promise.all([...renders, readmeCommand]);
});

after(() => {
  rmSync(workDir, { recursive: true, force: true });
});

for (const profile of PROFILES) {
  describe(`docker-compose --profile ${profile} (COMPOSE_PROFILES=${profile})`, () => {
    let rendered: Record<string, unknown>;
    let services: Map<string, Service>;

    before(() => {
      rendered = renderedByProfile.get(profile)!;
      services = enabledServices(rendered, profile);
    });

    it('runs exactly the gateway and the components of the profile', () => {
      assert.deepEqual([...services.keys()].sort(), ['gateway', ...PROFILE_COMPONENTS[profile]].sort());
    });

    it('publishes ports on public interfaces for the gateway only, and its four data ports', () => {
      for (const [name, service] of services) {
        const publicPorts = publishedPorts(service).filter((port) => isPublicInterface(port.hostIp));
        if (name === 'gateway') {
          assert.deepEqual(publicPorts.map((port) => port.published).sort(), GATEWAY_PORTS);
          for (const port of publicPorts) assert.equal(port.target, port.published);
        } else {
          assert.deepEqual(publicPorts, [], `${name} publishes ${JSON.stringify(publicPorts)} publicly`);
          for (const port of publishedPorts(service)) assert.equal(port.hostIp, '127.0.0.1', `${name} port`);
        }
      }
    });

    it('bind-mounts only files and directories that exist in the repository', () => {
      for (const [name, service] of services) {
        for (const mount of bindMounts(service)) {
          const inRepo = join(REPO_ROOT, relative(workDir, mount.source));
          assert.ok(!relative(workDir, mount.source).startsWith('..'), `${name} mounts ${mount.source}`);
          assert.ok(existsSync(inRepo), `${name} mounts ${relative(workDir, mount.source)}, missing`);
        }
      }
    });

    it('keeps data in named volumes declared at the top level', () => {
      const declared = Object.keys(mapping(rendered.volumes, 'volumes'));
      for (const [name, service] of services) {
        for (const volume of namedVolumes(service))
          assert.ok(declared.includes(volume), `${name}: ${volume}`);
      }
      for (const store of ['prometheus', 'victoriametrics'] as const) {
        const service = services.get(store);
        if (service)
          assert.equal(namedVolumes(service).length, 1, `${store} keeps its data in a named volume`);
      }
    });

    it('puts every service on the one bridge network observability', () => {
      assert.deepEqual(rendered.networks, { observability: { driver: 'bridge' } });
      for (const [name, service] of services) {
        assert.deepEqual(Object.keys(mapping(service.networks, `${name}.networks`)), ['observability']);
      }
    });

    it("switches off exactly the gateway listeners whose component the profile doesn't run", () => {
      const environment = environmentOf(services.get('gateway')!);
      const off = Object.keys(LISTENER_COMPONENT).filter(
        (prefix) => environment[`${prefix}_UPSTREAM`] === 'off',
      );
      assert.deepEqual(off, listenersOffIn(profile));
      for (const prefix of Object.keys(LISTENER_COMPONENT)) {
        const upstream = environment[`${prefix}_UPSTREAM`];
        assert.ok(
          upstream === undefined || upstream === 'off',
          `${prefix}_UPSTREAM=${upstream}: leave it default`,
        );
      }
      assert.equal(environment.GATEWAY_PROFILE, profile);
      assert.deepEqual(
        (environment.GATEWAY_PROFILE_SERVICES ?? '').split(' ').sort(),
        [...PROFILE_COMPONENTS[profile]].sort(),
        'the preflight checks the services the profile runs',
      );
    });

    it('mounts the directory holding the env file, and points GATEWAY_ENV_FILE into it', () => {
      const gateway = services.get('gateway')!;
      const envDir = bindMounts(gateway).find((mount) => mount.target === ENV_DIR_IN_CONTAINER);
      assert.ok(envDir, `the gateway mounts a host directory at ${ENV_DIR_IN_CONTAINER}`);
      assert.ok(statSync(envDir.source).isDirectory(), 'a directory, so that a replaced .env is seen');
      assert.equal(relative(workDir, envDir.source), '', 'by default the directory of docker-compose.yaml');
      assert.equal(environmentOf(gateway).GATEWAY_ENV_FILE, `${ENV_DIR_IN_CONTAINER}/.env`);
    });

    it("gives Prometheus the profile's own config file, if it runs Prometheus", () => {
      if (!services.has('prometheus')) return;
      const mount = bindMounts(services.get('prometheus')!).find(
        (candidate) => candidate.target === '/etc/prometheus/prometheus.yaml',
      );
      assert.ok(mount);
      assert.equal(relative(workDir, mount.source), join('config', 'prometheus', `${profile}.yaml`));
    });

    // Issue 15: the stack's Prometheus scrapes the gateway on the internal network and alerts.
    it('serves the gateway metrics on 9902 inside the network only, and gives Prometheus the rules', () => {
      const gateway = services.get('gateway')!;
      assert.equal(environmentOf(gateway).METRICS_LISTEN, '0.0.0.0:9902');
      assert.ok(!publishedPorts(gateway).some((port) => port.target === 9902), '9902 must not be published');
      if (!services.has('prometheus')) return;
      const rules = bindMounts(services.get('prometheus')!).find(
        (candidate) => candidate.target === '/etc/prometheus/rules',
      );
      assert.ok(rules, 'Prometheus mounts config/prometheus/rules at /etc/prometheus/rules');
      assert.equal(relative(workDir, rules.source), join('config', 'prometheus', 'rules'));
    });
  });
}

describe('docker-compose --profile P --profile shared-limits: Redis beside any of the six (issue 14)', () => {
  for (const profile of PROFILES) {
    it(`${profile}: the profile's services and redis, on the gateway's network`, async () => {
      const rendered = await renderCompose(profile, profile, ['shared-limits']);
      const services = enabledServices(rendered, profile, ['shared-limits']);
      assert.deepEqual(
        [...services.keys()].sort(),
        ['gateway', 'redis', ...PROFILE_COMPONENTS[profile]].sort(),
      );
      assert.deepEqual(services.get('redis')?.networks, services.get('gateway')?.networks);
    });
  }
});

describe('docker-compose --profile full without COMPOSE_PROFILES (the README first command)', () => {
  it('renders the full stack with every listener on', () => {
    const services = enabledServices(renderedWithoutComposeProfiles, 'full');
    assert.deepEqual([...services.keys()].sort(), [
      'gateway',
      'otel-collector',
      'prometheus',
      'victoriametrics',
    ]);
    const environment = environmentOf(services.get('gateway')!);
    assert.equal(environment.GATEWAY_PROFILE, 'full');
    for (const prefix of Object.keys(LISTENER_COMPONENT))
      assert.equal(environment[`${prefix}_UPSTREAM`], undefined);
  });
});

describe('docker-compose.yaml as written (what compose v2 reads)', () => {
  const compose = mapping(readRepoYaml('docker-compose.yaml'), 'docker-compose.yaml');
  const services = mapping(compose.services, 'services');
  const profilesOf = (name: string): string[] =>
    list(mapping(services[name], name).profiles, `${name}.profiles`) as string[];

  it('defines the gateway and the three stock components, each with the stock profiles', () => {
    assert.deepEqual(Object.keys(services).sort(), [
      'gateway',
      'grafana',
      'otel-collector',
      'prometheus',
      'redis',
      'victoriametrics',
    ]);
    assert.deepEqual([...profilesOf('gateway')].sort(), [...PROFILES].sort());
    for (const component of ['otel-collector', 'prometheus', 'victoriametrics'] as Component[]) {
      const expected = PROFILES.filter((profile) => PROFILE_COMPONENTS[profile].includes(component));
      assert.deepEqual([...profilesOf(component)].sort(), expected.sort(), component);
    }
  });

  // Issue 15: an optional dashboard, only with its own profile, provisioned from the repository.
  it('runs Grafana only in the grafana profile, pinned, on 127.0.0.1:3000, with the dashboard', () => {
    const grafana = mapping(services.grafana, 'grafana');
    assert.deepEqual(profilesOf('grafana'), ['grafana']);
    assert.match(String(grafana.image), /^grafana\/grafana:\d+\.\d+\.\d+$/);
    assert.deepEqual(grafana.ports, ['127.0.0.1:3000:3000']);
    const volumes = list(grafana.volumes, 'grafana.volumes') as string[];
    assert.ok(volumes.includes('./config/grafana/provisioning:/etc/grafana/provisioning:ro'));
    assert.ok(
      volumes.includes('./config/grafana/edge-gateway.json:/var/lib/grafana/dashboards/edge-gateway.json:ro'),
    );
    const datasources = mapping(
      readRepoYaml('config/grafana/provisioning/datasources/gateway-prometheus.yaml'),
      'datasources',
    );
    const [datasource] = list(datasources.datasources, 'datasources').map((entry) =>
      mapping(entry, 'datasource'),
    );
    // Through the gateway with a read key from the environment, never a key in the repository.
    assert.equal(datasource?.url, 'http://gateway:9090');
    assert.equal(mapping(datasource?.jsonData, 'jsonData').httpHeaderName1, 'X-API-Key');
    assert.equal(
      mapping(datasource?.secureJsonData, 'secureJsonData').httpHeaderValue1,
      '$GRAFANA_GATEWAY_KEY',
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's interpolation, not a JS template
    assert.equal(mapping(grafana.environment, 'environment').GRAFANA_GATEWAY_KEY, '${GRAFANA_GATEWAY_KEY:-}');
    const providers = mapping(
      readRepoYaml('config/grafana/provisioning/dashboards/edge-gateway.yaml'),
      'providers',
    );
    const [provider] = list(providers.providers, 'providers').map((entry) => mapping(entry, 'provider'));
    assert.equal(mapping(provider?.options, 'options').path, '/var/lib/grafana/dashboards');
  });

  it('builds the gateway from the repository and pins every image', () => {
    assert.deepEqual(mapping(services.gateway, 'gateway').build, { context: '.' });
    const images = Object.fromEntries(
      Object.entries(services).map(([name, service]) => [name, String(mapping(service, name).image)]),
    );
    assert.equal(images['otel-collector'], 'otel/opentelemetry-collector-contrib:0.138.0');
    assert.match(images.prometheus ?? '', /^prom\/prometheus:v\d+\.\d+\.\d+$/);
    assert.match(images.victoriametrics ?? '', /^victoriametrics\/victoria-metrics:v\d+\.\d+\.\d+$/);
  });

  // Issue 14: an optional shared LIMIT_STORE, in its own profile, pinned, unpublished, not persisted.
  it('runs Redis only in the shared-limits profile, pinned, without a published port or persistence', () => {
    const redis = mapping(services.redis, 'redis');
    assert.deepEqual(profilesOf('redis'), ['shared-limits']);
    assert.match(String(redis.image), /^redis:\d+\.\d+\.\d+-alpine$/);
    assert.equal(redis.ports, undefined);
    assert.equal(redis.command, "redis-server --save '' --appendonly no");
    assert.equal(redis.volumes, undefined);
  });

  it('keeps VictoriaMetrics data for 12 months', () => {
    const command = list(mapping(services.victoriametrics, 'victoriametrics').command, 'command');
    assert.ok(command.includes('-retentionPeriod=12'));
  });

  it('orders start-up with depends_on, skipping dependencies the active profile does not run', () => {
    for (const [name, value] of Object.entries(services)) {
      const dependsOn = mapping(value, name).depends_on;
      if (dependsOn === undefined) continue;
      for (const [dependency, spec] of Object.entries(mapping(dependsOn, `${name}.depends_on`))) {
        const condition = mapping(spec, `${name}.depends_on.${dependency}`);
        const runsWithoutIt = profilesOf(name).some((profile) => !profilesOf(dependency).includes(profile));
        if (runsWithoutIt) {
          assert.equal(condition.required, false, `${name} also runs without ${dependency}: required: false`);
        }
        const hasHealthcheck = mapping(services[dependency], dependency).healthcheck !== undefined;
        assert.equal(
          condition.condition,
          hasHealthcheck ? 'service_healthy' : 'service_started',
          `${name} waits for ${dependency} as far as ${dependency} can tell`,
        );
      }
    }
    const gatewayDependencies = Object.keys(
      mapping(mapping(services.gateway, 'gateway').depends_on, 'depends_on'),
    );
    assert.deepEqual(gatewayDependencies.sort(), ['otel-collector', 'prometheus', 'victoriametrics']);
  });

  it('needs no .env: the env files it reads exist for every profile, and .env is not one of them', () => {
    for (const profile of PROFILES) {
      assert.ok(
        existsSync(join(REPO_ROOT, 'config', 'gateway', `${profile}.env`)),
        `config/gateway/${profile}.env`,
      );
    }
    for (const [name, value] of Object.entries(services)) {
      const envFiles = mapping(value, name).env_file;
      for (const file of (envFiles as string[] | undefined) ?? []) assert.doesNotMatch(file, /(^|\/)\.env$/);
    }
  });
});
