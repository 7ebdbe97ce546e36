import { readFileSync, writeFileSync } from 'node:fs';
import { type BenchResult, renderMarkdown } from './report.js';

/**
 * Re-renders a results markdown from its JSON (after a change to the report's layout, without
 * running the benchmark again):
 *   node --import tsx bench/render.ts bench/results/latest.json > bench/results/latest.md
 */
const [file] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: node --import tsx bench/render.ts <latest.json>\n');
  process.exit(2);
}
const result = JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
writeFileSync(process.stdout.fd, renderMarkdown(result));
