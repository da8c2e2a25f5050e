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

/** Where the plan-driven PE of the deploy tests reads its plan: plan.yaml on QEMU's smb= share. */
export const TEST_PLAN_URL = 'smb://10.0.2.4/qemu/plan.yaml';
let pendingPlanBuild: Promise<BuildResult> | undefined;

/** The default PE with imagepe.plan=TEST_PLAN_URL on its kernel command line, built once per process. */
export function planTestBuild(): Promise<BuildResult> {
  pendingPlanBuild ??= buildPe({
    config: parseBuildConfig({ kernelArgs: ['quiet', 'loglevel=3', 'panic=10', `imagepe.plan=${TEST_PLAN_URL}`] }),
    outputDir: join(projectRoot(), '.cache', 'test-output-deploy'),
  });
  return pendingPlanBuild;
}
