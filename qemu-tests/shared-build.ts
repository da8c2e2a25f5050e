import { join } from 'node:path';
import { buildPe, parseBuildConfig, projectRoot, type BuildResult } from '../builder/index.js';

let pending: Promise<BuildResult> | undefined;

/**
 * The PE the integration and e2e tests boot: built once per process with the default config,
 * through the build cache, so test files share one build.
 */
export function sharedTestBuild(): Promise<BuildResult> {
  pending ??= buildPe({ config: parseBuildConfig({}), outputDir: join(projectRoot(), '.cache', 'test-output') });
  return pending;
}
