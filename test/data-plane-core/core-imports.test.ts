import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

/*
 * Issue 13: the data plane's core (src/data-plane/core) is transport-neutral. Its modules import neither node:http
 * nor node:http2 (nor https, undici): the protocol adapters in src/listeners do.
 */
const CORE = join(import.meta.dirname, '../../src/data-plane/core');
const TRANSPORTS = new Set(['node:http', 'node:http2', 'node:https', 'http', 'http2', 'https', 'undici']);

test('src/data-plane/core imports no HTTP machinery', () => {
  const files = readdirSync(CORE).filter((name) => name.endsWith('.ts'));
  assert.ok(files.length >= 4, `core modules: ${files.join(', ')}`);
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(join(CORE, file), 'utf8'), true, true);
    const transports = importedFiles
      .map((imported) => imported.fileName)
      .filter((name) => TRANSPORTS.has(name));
    assert.deepEqual(transports, [], `${file} imports ${transports.join(', ')}`);
  }
});
