import { join } from 'node:path';
import { ImagepeError } from '../core/index.js';
import { projectRoot } from './paths.js';

/**
 * The agent as one ES module for the PE's Node.js: every import (zod included) is inlined, so
 * the PE needs no node_modules.
 */
export async function bundleAgent(entry = join(projectRoot(), 'agent', 'main.ts')): Promise<Buffer> {
  // Loaded on demand: esbuild is a development dependency, and only builds need it.
  let build: typeof import('esbuild').build;
  try {
    ({ build } = await import('esbuild'));
  } catch (e) {
    throw new ImagepeError('TOOL_MISSING', 'esbuild, which bundles the agent, is not installed', { hint: 'Run npm install in the imagepe checkout (esbuild is a development dependency).', cause: e });
  }
  try {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      write: false,
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
      // CommonJS dependencies inlined into an ES module still call require() for node builtins.
      banner: { js: "// imagepe agent (bundled)\nimport { createRequire as __imagepeRequire } from 'node:module';\nconst require = __imagepeRequire(import.meta.url);" },
    });
    const out = result.outputFiles[0];
    if (!out) throw new Error('esbuild produced no output');
    return Buffer.from(out.contents);
  } catch (e) {
    throw new ImagepeError('COMMAND_FAILED', `bundling the agent (${entry}) failed: ${(e as Error).message}`, { cause: e });
  }
}
