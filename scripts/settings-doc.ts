import { readFileSync, writeFileSync } from 'node:fs';
import { SETTINGS_BEGIN, SETTINGS_END, withSettingsTable } from '../src/config/settings-doc.js';

// npm run docs:settings: rewrites the README's configuration table from src/config/settings.ts.
const README = new URL('../README.md', import.meta.url);
const updated = withSettingsTable(readFileSync(README, 'utf8'));
if (updated === null) {
  process.stderr.write(`README.md: the markers ${SETTINGS_BEGIN} and ${SETTINGS_END} are missing\n`);
  process.exitCode = 1;
} else {
  writeFileSync(README, updated);
}
