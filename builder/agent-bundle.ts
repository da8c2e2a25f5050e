import { join } from 'node:path';
import { ImagepeError } from '../core/index.js';
import { projectRoot } from './paths.js';

/**
 * The agent as one CommonJS file for the PE's Node.js: every import (zod included) is inlined, so
 * the PE needs no node_modules. CommonJS because the PE's loader (templates/agent-loader.cjs)
 * compiles it with vm.Script and a V8 code cache made at build time, which ES modules cannot use
 * on Node.js 20.
 */
export async function bundleAgent(entry = join(projectRoot(), 'agent', 'pe-entry.ts')): Promise<Buffer> {
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
      format: 'cjs',
      target: 'node20',
      write: false,
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
      banner: { js: '// imagepe agent (bundled)' },
    });
    // import.meta has no value in CommonJS: code that needs it would break only in the PE.
    const metaWarnings = result.warnings.filter((w) => w.text.includes('import.meta'));
    if (metaWarnings.length > 0) throw new Error(`the agent uses import.meta, which a CommonJS bundle lacks: ${metaWarnings.map((w) => `${w.location?.file}:${w.location?.line}`).join(', ')}`);
    const out = result.outputFiles[0];
    if (!out) throw new Error('esbuild produced no output');
    return Buffer.from(out.contents);
  } catch (e) {
    throw new ImagepeError('COMMAND_FAILED', `bundling the agent (${entry}) failed: ${(e as Error).message}`, { cause: e });
  }
}
