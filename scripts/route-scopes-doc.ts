import { readFileSync, writeFileSync } from 'node:fs';
import { ROUTE_SCOPES_END, ROUTE_SCOPES_START, withRouteTable } from '../src/auth/route-scope.js';

// npm run docs:routes: rewrites the route tables of docs/security.md from src/auth/route-scope.ts.
const SECURITY = new URL('../docs/security.md', import.meta.url);
const updated = withRouteTable(readFileSync(SECURITY, 'utf8'));
if (updated === null) {
  process.stderr.write(
    `docs/security.md: the markers ${ROUTE_SCOPES_START} and ${ROUTE_SCOPES_END} are missing\n`,
  );
  process.exitCode = 1;
} else {
  writeFileSync(SECURITY, updated);
}
