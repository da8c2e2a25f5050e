import { existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { release, uptime } from 'node:os';
import { parseAgentCommandLine, type AgentCommandLine } from './cmdline.js';
import { deploy } from './deploy/index.js';
import type { DeployEvent } from './deploy/events.js';
import { disksFromSysBlock, findBootMedium, readSysBlock } from './disks.js';
import { formatEventLine, stampEvent, type EventBody } from './event-line.js';
import type { AgentEvent } from './events.js';
import { waitForNetwork } from './network.js';
import { parsePlanText, planNeedsNetwork, readPlanText } from './plan/index.js';
import { screenLine } from './screen.js';
import { parseSourceUrl } from './share/index.js';

// The PE's entry point: /init starts it with stdout going to the consoles and the log, and acts
// on /run/imagepe/after (poweroff, reboot or shell) once it exits with status 0.
const EMBEDDED_PLAN = '/etc/imagepe/plan.json';
const AFTER_FILE = '/run/imagepe/after';
const NETWORK_WAIT_MS = 90_000;

// /init sends stdout (JSON event lines) to the serial consoles and the log, and names the text
// consoles a technician looks at in IMAGEPE_SCREENS; those get the same events in words.
const screens = (process.env.IMAGEPE_SCREENS ?? '')
  .split(/\s+/)
  .filter(Boolean)
  .flatMap((path) => {
    try {
      return [openSync(path, 'w')];
    } catch {
      return [];
    }
  });
let lastScreenProgress = 0;

function show(event: AgentEvent): void {
  if (event.type === 'progress') {
    const now = Date.now();
    if (now - lastScreenProgress < 250 && event.done !== event.total) return;
    lastScreenProgress = now;
  }
  const text = screenLine(event);
  if (text === undefined) return;
  for (const fd of screens) {
    try {
      writeSync(fd, text.replace(/\n/g, '\r\n'));
    } catch {
      // A screen that went away must not stop the deploy.
    }
  }
}

function emit(body: EventBody<AgentEvent>): void {
  const event = stampEvent(body) as AgentEvent;
  // Synchronous, so an event is on the console before anything that follows can fail.
  writeSync(1, `${formatEventLine(event)}\n`);
  show(event);
}

// The serial line carries about 11 KB/s; progress goes out at most once a second per phase.
function deployEventWriter(): (event: DeployEvent) => void {
  const last = new Map<string, number>();
  return (event) => {
    show(event);
    if (event.type === 'progress' && event.done !== event.total) {
      const now = Date.now();
      if (now - (last.get(event.phase) ?? 0) < 1_000) return;
      last.set(event.phase, now);
    }
    writeSync(1, `${formatEventLine(event)}\n`);
  };
}

async function runDeploy(cmdline: AgentCommandLine, planLocation: string, bootMedium: string | null): Promise<void> {
  if (planNeedsNetwork(planLocation)) await waitForNetwork(NETWORK_WAIT_MS);
  const { text, source } = await readPlanText(planLocation, { ...(bootMedium ? { mediaDevice: bootMedium } : {}) });
  const plan = parsePlanText(text, source);
  const kind = parseSourceUrl(plan.source.url).kind;
  if (kind === 'smb' || kind === 'nfs' || kind === 'http') await waitForNetwork(NETWORK_WAIT_MS);
  const result = await deploy(plan, {
    yes: true,
    events: deployEventWriter(),
    planFile: source,
    ...(bootMedium ? { bootMedium, mediaDevice: bootMedium } : {}),
    ...(cmdline.params.disk ? { disk: cmdline.params.disk } : {}),
  });
  writeFileSync(AFTER_FILE, `${plan.after}\n`);
  emit({ type: 'log', level: 'info', text: `deployed to ${result.disk} in ${(result.durationMs / 1000).toFixed(1)} s; next: ${plan.after}` });
}

async function main(): Promise<number> {
  const cmdline = parseAgentCommandLine(readFileSync('/proc/cmdline', 'utf8'));
  const entries = readSysBlock();
  const bootMedium = findBootMedium(entries, cmdline.medium);
  const planLocation = cmdline.plan ?? (existsSync(EMBEDDED_PLAN) ? EMBEDDED_PLAN : null);
  emit({
    type: 'ready',
    node: process.version,
    kernel: release(),
    mode: cmdline.mode,
    plan: planLocation,
    disks: disksFromSysBlock(entries, bootMedium),
    bootMedium,
    uptimeSeconds: uptime(),
  });
  if (cmdline.mode === 'deploy' && planLocation) {
    await runDeploy(cmdline, planLocation, bootMedium);
  } else if (cmdline.mode !== 'shell') {
    emit({ type: 'log', level: 'info', text: `mode ${cmdline.mode}: no plan (imagepe.plan= or one embedded in the build); the interactive technician mode is not built yet, so a shell follows` });
  }
  return 0;
}

try {
  process.exitCode = await main();
} catch (e) {
  // deploy() has announced its own `failed` event; this line covers failures outside it.
  emit({ type: 'error', code: (e as { code?: string }).code ?? 'INTERNAL', message: e instanceof Error ? e.message : String(e) });
  process.exitCode = 1;
}
