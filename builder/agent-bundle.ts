import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ImagepeError } from '../core/index.js';
import { projectRoot } from './paths.js';

/** The agent's TypeScript entry, present in a checkout only. */
export function agentEntry(root = projectRoot()): string {
  return join(root, 'agent', 'pe-entry.ts');
}

/**
 * The agent bundle an npm package ships, made by `npm pack` (prepack), so an installed imagepe
 * builds its PE without esbuild, a development dependency.
 */
export function shippedAgentBundle(root = projectRoot()): string {
  return join(root, 'dist', 'pe-agent', 'agent.cjs');
}

/**
 * The agent as one CommonJS file for the PE's Node.js: every import (zod included) is inlined, so
 * the PE needs no node_modules. CommonJS because the PE's loader (templates/agent-loader.cjs)
 * compiles it with vm.Script and a V8 code cache made at build time, which ES modules cannot use
 * on Node.js 20.
 *
 * From a checkout (the agent's sources are there) it is bundled now with esbuild, so a build
 * always carries the code as it is; from an installed package it is the bundle the package
 * shipped. An explicit `entry` is always bundled. Throws TOOL_MISSING when neither esbuild nor a
 * shipped bundle is there, COMMAND_FAILED when bundling fails.
 */
export async function bundleAgent(entry?: string): Promise<Buffer> {
  const root = projectRoot();
  if (entry === undefined && !existsSync(agentEntry(root))) {
    const shipped = shippedAgentBundle(root);
    return readFile(shipped).catch((e: unknown) => {
      throw new ImagepeError('TOOL_MISSING', `the installed imagepe has no agent bundle (${shipped}) and no agent sources to make one`, {
        hint: 'The package was packed without its prepack step; reinstall it from a tarball made by npm pack, or run imagepe from a checkout.',
        cause: e,
      });
    });
  }
  return esbuildAgent(entry ?? agentEntry(root));
}

/** Writes the agent bundle where an installed package looks for it (shippedAgentBundle); the prepack step. */
export async function writeShippedAgentBundle(root = projectRoot()): Promise<string> {
  const out = shippedAgentBundle(root);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, await esbuildAgent(agentEntry(root)));
  return out;
}

async function esbuildAgent(entry: string): Promise<Buffer> {
  // Loaded on demand: esbuild is a development dependency, and only a checkout bundles.
  let build: typeof import('esbuild').build;
  try {
    ({ build } = await import('esbuild'));
  } catch (e) {
    throw new ImagepeError('TOOL_MISSING', 'esbuild, which bundles the agent from its sources, is not installed', { hint: 'Run npm ci in the imagepe checkout (esbuild is a development dependency; an installed package ships the bundle instead).', cause: e });
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
