import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import {
  closedPortUrl,
  list,
  mapping,
  REPO_ROOT,
  readRepoFile,
  runReadyProbe,
  StandInAdmin,
} from './support.js';

type Manifest = Record<string, unknown>;

const DIR = join('config', 'kubernetes');
const DATA_PORTS = [4317, 4318, 8428, 9090];

function manifestsIn(relativeDir: string): Manifest[] {
  return readdirSync(join(REPO_ROOT, relativeDir))
    .filter((file) => file.endsWith('.yaml'))
    .flatMap((file) =>
      parseAllDocuments(readRepoFile(join(relativeDir, file))).map((document) => {
        assert.deepEqual(document.errors, [], `${file} is valid YAML`);
        return mapping(document.toJS(), file);
      }),
    );
}

const manifests = manifestsIn(DIR);
const byKind = (kind: string): Manifest => {
  const found = manifests.filter((manifest) => manifest.kind === kind);
  assert.equal(found.length, 1, `one ${kind} in ${DIR}`);
  return found[0]!;
};

const deployment = byKind('Deployment');
const spec = mapping(deployment.spec, 'Deployment.spec');
const podTemplate = mapping(spec.template, 'template');
const podSpec = mapping(podTemplate.spec, 'template.spec');
const containers = list(podSpec.containers, 'containers').map((container) => mapping(container, 'container'));
const gateway = containers[0]!;
const podLabels = mapping(mapping(podTemplate.metadata, 'template.metadata').labels, 'labels');

function selects(selector: Record<string, unknown>): boolean {
  return Object.entries(selector).every(([key, value]) => podLabels[key] === value);
}

function execCommand(probe: unknown, name: string): string[] {
  return list(mapping(mapping(probe, name).exec, `${name}.exec`).command, `${name}.exec.command`) as string[];
}

describe('config/kubernetes', () => {
  it('has a Deployment, a Service, a PodDisruptionBudget and a kustomization of exactly those', () => {
    assert.deepEqual(manifests.map((manifest) => manifest.kind).sort(), [
      'Deployment',
      'Kustomization',
      'PodDisruptionBudget',
      'Service',
    ]);
    const kustomization = byKind('Kustomization');
    const resources = list(kustomization.resources, 'resources') as string[];
    for (const resource of resources) assert.ok(existsSync(join(REPO_ROOT, DIR, resource)), resource);
    assert.equal(resources.length, 3, 'the Secret is created from .env, never applied from an example');
  });

  it('runs two or more replicas, rolled one at a time without losing capacity', () => {
    assert.ok(Number(spec.replicas) >= 2);
    assert.ok(selects(mapping(mapping(spec.selector, 'selector').matchLabels, 'matchLabels')));
    const rollingUpdate = mapping(mapping(spec.strategy, 'strategy').rollingUpdate, 'rollingUpdate');
    assert.equal(rollingUpdate.maxUnavailable, 0);
  });

  it('exposes the four data ports and runs as a non-root user', () => {
    const ports = list(gateway.ports, 'ports').map((port) => Number(mapping(port, 'port').containerPort));
    assert.deepEqual(ports.sort(), DATA_PORTS);
    assert.equal(mapping(podSpec.securityContext, 'securityContext').runAsNonRoot, true);
    assert.equal(
      mapping(gateway.securityContext, 'container securityContext').allowPrivilegeEscalation,
      false,
    );
  });

  it('mounts the whole env Secret as the directory of GATEWAY_ENV_FILE (no subPath: it would never update)', () => {
    const env = list(gateway.env, 'env').map((entry) => mapping(entry, 'env entry'));
    const envFile = env.find((entry) => entry.name === 'GATEWAY_ENV_FILE')?.value;
    assert.equal(envFile, '/etc/edge-gateway/.env');
    const mount = list(gateway.volumeMounts, 'volumeMounts')
      .map((entry) => mapping(entry, 'volumeMount'))
      .find((entry) => entry.mountPath === '/etc/edge-gateway');
    assert.ok(mount, 'a volume at /etc/edge-gateway');
    assert.equal(mount.subPath, undefined);
    assert.equal(mount.readOnly, true);
    const volume = list(podSpec.volumes, 'volumes')
      .map((entry) => mapping(entry, 'volume'))
      .find((entry) => entry.name === mount.name);
    const secret = mapping(volume?.secret, 'secret volume');
    assert.equal(secret.secretName, 'edge-gateway-env');
    assert.equal(secret.optional, false, 'no pod starts on the placeholder key for want of the Secret');
  });

  it('documents the Secret it needs: one key `.env`, made from the operator .env', () => {
    const [example] = manifestsIn(join(DIR, 'examples'));
    assert.equal(example?.kind, 'Secret');
    assert.equal(mapping(example.metadata, 'metadata').name, 'edge-gateway-env');
    assert.deepEqual(Object.keys(mapping(example.stringData, 'stringData')), ['.env']);
    assert.match(
      readRepoFile(join(DIR, 'examples', 'secret.yaml')),
      /kubectl create secret generic edge-gateway-env/,
    );
  });

  it('probes readiness with an exec of node inside the container, since admin binds 127.0.0.1', () => {
    const readiness = execCommand(gateway.readinessProbe, 'readinessProbe');
    assert.deepEqual(readiness.slice(0, 2), ['node', '-e']);
    assert.equal(mapping(gateway.readinessProbe, 'readinessProbe').httpGet, undefined);
    assert.equal(mapping(gateway.livenessProbe, 'livenessProbe').httpGet, undefined);
  });

  it('leaves time for preStop and the drain before the kill', () => {
    const preStop = mapping(mapping(gateway.lifecycle, 'lifecycle').preStop, 'preStop');
    const sleepSeconds = Number(list(mapping(preStop.exec, 'preStop.exec').command, 'command')[1]);
    assert.ok(Number(podSpec.terminationGracePeriodSeconds) > sleepSeconds);
  });

  it('has a Service on the four data ports that selects the gateway pods by named port', () => {
    const service = mapping(byKind('Service').spec, 'Service.spec');
    assert.ok(selects(mapping(service.selector, 'selector')));
    const containerPortNames = new Set(
      list(gateway.ports, 'ports').map((port) => mapping(port, 'port').name),
    );
    const ports = list(service.ports, 'Service.ports').map((port) => mapping(port, 'Service port'));
    assert.deepEqual(ports.map((port) => Number(port.port)).sort(), DATA_PORTS);
    for (const port of ports)
      assert.ok(containerPortNames.has(port.targetPort), `targetPort ${port.targetPort}`);
  });

  it('has a PodDisruptionBudget that keeps a replica up and still lets nodes drain', () => {
    const pdb = mapping(byKind('PodDisruptionBudget').spec, 'PodDisruptionBudget.spec');
    assert.ok(selects(mapping(mapping(pdb.selector, 'selector').matchLabels, 'matchLabels')));
    assert.ok(Number(pdb.minAvailable) >= 1 && Number(pdb.minAvailable) < Number(spec.replicas));
  });
});

describe('config/kubernetes probes, run against a stand-in admin port', () => {
  const admin = new StandInAdmin();
  let url: string;

  before(async () => {
    url = await admin.start();
  });

  after(() => admin.stop());

  it('readiness: ready on 200 only', async () => {
    const command = execCommand(gateway.readinessProbe, 'readinessProbe');
    admin.status = 200;
    assert.equal(await runReadyProbe(command, url), 0);
    admin.status = 503;
    assert.equal(await runReadyProbe(command, url), 1);
    assert.equal(await runReadyProbe(command, await closedPortUrl()), 1);
  });

  it('liveness: alive while admin answers, even 503 (draining or taken out on purpose)', async () => {
    const command = execCommand(gateway.livenessProbe, 'livenessProbe');
    admin.status = 503;
    assert.equal(await runReadyProbe(command, url), 0);
    assert.equal(await runReadyProbe(command, await closedPortUrl()), 1);
  });
});
