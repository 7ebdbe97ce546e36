import { hashSync } from 'bcrypt';
import { BcryptVerifier } from '../src/auth/bcrypt-verifier.js';
import { CredentialStore } from '../src/auth/credential-store.js';
import { readPresentedCredential } from '../src/auth/presented-credential.js';

/**
 * What authentication itself costs per request, in-process, without the network: a plaintext
 * Basic user versus a bcrypt user whose check is cached. Workload 6 compares the two through the
 * whole proxy, where the load generator's noise (±10-20 % between rounds) is far larger than any
 * difference; this isolates the part that differs. Usage: node --import tsx bench/auth-cost.ts
 */

const CALLS = 1_000_000;
const ROUNDS = 3;
const USER = 'bench-user';
const PASSWORD = 'bench-password-1';

const verifier = new BcryptVerifier({
  cacheSize: 100,
  cacheTtlMs: 10 * 60_000,
  maxConcurrent: 1,
  maxQueued: 4,
  cpuShare: 1,
  burstMs: 5000,
});
const stores = {
  plaintext: new CredentialStore(
    {
      authMethod: 'basic-auth',
      apiKeys: [],
      basicCredentials: [{ user: USER, kind: 'plain', password: PASSWORD }],
    },
    verifier,
  ),
  'bcrypt, cached': new CredentialStore(
    {
      authMethod: 'basic-auth',
      apiKeys: [],
      basicCredentials: [{ user: USER, kind: 'bcrypt', hash: hashSync(PASSWORD, 10) }],
    },
    verifier,
  ),
};
const rawHeaders = ['authorization', `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`];

// The first bcrypt check runs bcrypt (tens of ms); every later one is a cache hit.
const first = await stores['bcrypt, cached'].authenticate(readPresentedCredential(rawHeaders));
if (!first.ok) throw new Error('the bcrypt user was not accepted');

const perCallUs: Record<string, number[]> = { plaintext: [], 'bcrypt, cached': [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, store] of Object.entries(stores)) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) {
      const outcome = store.authenticate(readPresentedCredential(rawHeaders));
      if (outcome instanceof Promise || !outcome.ok) throw new Error(`${name}: not a synchronous success`);
    }
    perCallUs[name]?.push(Number(process.hrtime.bigint() - started) / CALLS / 1000);
  }
}
for (const [name, values] of Object.entries(perCallUs)) {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  console.log(
    `${name.padEnd(16)} ${median.toFixed(2)} µs per request (median of ${ROUNDS} rounds of ${CALLS.toLocaleString('en')} calls: ${values.map((v) => v.toFixed(2)).join(', ')})`,
  );
}
