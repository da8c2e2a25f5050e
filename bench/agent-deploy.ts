// The agent process of the deploy-apply bench: `node AGENT SPEC.json`, where AGENT is this module
// bundled by builder/agent-bundle.ts exactly as the PE's agent is, so the figure is of the same
// kind of process (one bundled ES module, zod and the rest inlined) and not of the bench's own
// Node.js with its many loaded modules. It runs one deploy() and writes its figures to
// SPEC.result; it prints nothing, a failure goes to stderr for run() to quote.
import { readFileSync, writeFileSync } from 'node:fs';
import { deploy } from '../agent/deploy/index.js';
import { parsePlan } from '../agent/plan/index.js';
import type { AgentDeployResult, AgentDeploySpec } from './deploy-apply.js';

async function main(): Promise<void> {
  const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as AgentDeploySpec;
  let started = 0;
  let applySeconds = 0;
  let applyBytes = 0;
  let beforeApplyKiB = 0;
  await deploy(parsePlan(spec.plan), {
    disk: spec.disk,
    yes: true,
    facts: {},
    events: (e) => {
      if (e.type === 'step' && e.step === 'apply' && e.status === 'started') {
        beforeApplyKiB = process.resourceUsage().maxRSS;
        started = performance.now();
      }
      if (e.type === 'step' && e.step === 'apply' && e.status === 'done') applySeconds = (performance.now() - started) / 1000;
      if (e.type === 'progress' && e.step === 'apply' && e.unit === 'bytes' && e.total) applyBytes = e.total;
    },
  });
  const result: AgentDeployResult = { applySeconds, applyBytes, maxRssKiB: process.resourceUsage().maxRSS, maxRssBeforeApplyKiB: beforeApplyKiB };
  writeFileSync(spec.result, `${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
