import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { release, uptime } from 'node:os';
import { ImagepeError } from '../core/errors.js';
import { capture } from './capture/index.js';
import { parseAgentCommandLine, type AgentCommandLine } from './cmdline.js';
import { runTechnicianConsole } from './console/index.js';
import { deploy } from './deploy/index.js';

import { readFirmwareState } from './firmware.js';
import { disksFromSysBlock, findBootMedium, readSysBlock } from './disks.js';
import { stampEvent, type EventBody } from './events/line.js';
import type { AgentEvent, Disk, RunEvent } from './events/index.js';
import { waitForNetwork } from './network.js';
import { AgentOutputs } from './outputs.js';
import { parseAnyPlanText, planNeedsNetwork, readPlanText, type PlanText } from './plan/index.js';
import { EventPoster, fetchServerPlan, macFileName, readMachineIdentity, resolveServerUrl, type MachineIdentity } from './server/index.js';

// The PE's entry point: /init starts it with stdout going to the boot log (the agent writes to
// the consoles itself), and acts on /run/imagepe/after (poweroff, reboot or shell) once it
// exits with status 0.
const EMBEDDED_PLAN = '/etc/imagepe/plan.json';
const AFTER_FILE = '/run/imagepe/after';
const NETWORK_WAIT_MS = 90_000;

// How long the events still queued for the deployment server may hold up the reboot.
const POSTER_FLUSH_MS = 15_000;

// Opened when the agent starts, not when the module loads: the build loads it to make its code cache.
let outputs: AgentOutputs;
// Set when the PE was booted from a deployment server: every event also goes there.
let poster: EventPoster | undefined;

function emit(body: EventBody<AgentEvent>): void {
  send(stampEvent(body) as AgentEvent);
}

function send(e: AgentEvent): void {
  outputs.event(e);
  poster?.push(e);
}

/** Where this machine's events and first-boot report go on the deployment server (by its first MAC). */
function serverEndpoints(server: URL, id: MachineIdentity): { events: URL; report: URL } | undefined {
  const mac = id.macs[0];
  if (!mac) return undefined;
  return { events: new URL(`events/${macFileName(mac)}`, server), report: new URL(`report/${macFileName(mac)}`, server) };
}

/** Runs a deploy plan or a capture plan, by its kind. */
async function runPlan(cmdline: AgentCommandLine, plan: PlanText, bootMedium: string | null, report: URL | undefined): Promise<void> {
  const { text, source } = plan;
  const parsed = parseAnyPlanText(text, source);
  // imagepe.mode= from a menu entry and the plan's kind must agree: a capture entry that finds
  // a deploy plan (or the other way round) would write to the wrong disk's data.
  if (cmdline.params.mode && cmdline.params.mode !== parsed.kind) {
    throw new ImagepeError('INVALID_INPUT', `the PE was started in ${cmdline.mode} mode, but ${source} is a ${parsed.kind} plan`, {
      hint: `Choose the ${parsed.kind} entry of the boot menu, or give a plan with kind: ${cmdline.mode}.`,
    });
  }
  const common = {
    yes: true,
    events: (e: RunEvent) => send(e),
    planFile: source,
    ...(bootMedium ? { bootMedium, mediaDevice: bootMedium } : {}),
    ...(cmdline.params.disk ? { disk: cmdline.params.disk } : {}),
  };
  if (parsed.kind === 'deploy') {
    const plan = { ...parsed.plan, source: { ...parsed.plan.source, url: resolveServerUrl(parsed.plan.source.url, cmdline.server) } };
    if (planNeedsNetwork(plan.source.url)) await waitForNetwork(NETWORK_WAIT_MS);
    const result = await deploy(plan, { ...common, ...(report ? { report } : {}) });
    writeFileSync(AFTER_FILE, `${plan.after}\n`);
    emit({ type: 'log', level: 'info', text: `deployed to ${result.disk} in ${(result.durationMs / 1000).toFixed(1)} s; next: ${plan.after}` });
  } else {
    const plan = parsed.plan;
    if (planNeedsNetwork(plan.destination.url)) await waitForNetwork(NETWORK_WAIT_MS);
    const result = await capture(plan, common);
    writeFileSync(AFTER_FILE, `${plan.after}\n`);
    emit({ type: 'log', level: 'info', text: `captured image ${result.index} "${result.name}" to ${result.wim} in ${(result.durationMs / 1000).toFixed(1)} s; next: ${plan.after}` });
  }
}

/** No plan: a technician at the machine answers questions on whichever console they press Enter. */
async function runConsole(cmdline: AgentCommandLine, bootMedium: string | null, disks: Disk[]): Promise<void> {
  const after = await runTechnicianConsole(outputs.consoles(), {
    disks,
    bootMedium,
    ...(cmdline.params.share ? { defaultShare: cmdline.params.share } : {}),
    waitForNetwork: () => waitForNetwork(NETWORK_WAIT_MS),
    claimed: (path: string | undefined) => outputs.reserve(path),
    events: (e: RunEvent) => send(e),
  });
  writeFileSync(AFTER_FILE, `${after}\n`);
}

async function main(): Promise<number> {
  const cmdline = parseAgentCommandLine(readFileSync('/proc/cmdline', 'utf8'));
  const entries = readSysBlock();
  const bootMedium = findBootMedium(entries, cmdline.medium);
  const planLocation = cmdline.plan ?? (existsSync(EMBEDDED_PLAN) ? EMBEDDED_PLAN : null);
  const disks = disksFromSysBlock(entries, bootMedium);
  // Booted from a deployment server: it is told everything from the ready event on.
  const identity = cmdline.server ? await readMachineIdentity(cmdline.bootMac) : undefined;
  const endpoints = cmdline.server && identity ? serverEndpoints(cmdline.server, identity) : undefined;
  if (endpoints) poster = new EventPoster({ url: endpoints.events });
  emit({
    type: 'ready',
    node: process.version,
    kernel: release(),
    mode: cmdline.mode,
    plan: planLocation ?? (cmdline.server ? new URL('plans/', cmdline.server).href : null),
    disks,
    bootMedium,
    firmware: readFirmwareState(),
    ...codeCacheState(),
    uptimeSeconds: uptime(),
  });
  if (cmdline.mode === 'shell') return 0;
  const plan = await findPlan(cmdline, planLocation, bootMedium, identity);
  if (plan) await runPlan(cmdline, plan, bootMedium, endpoints?.report);
  else await runConsole(cmdline, bootMedium, disks);
  return 0;
}

/**
 * The plan to run: imagepe.plan= or the embedded one; else, booted from a deployment server, the
 * one it has for this machine (plans/<mac>.yaml, <uuid>, <serial>, default.yaml); else none, and
 * the technician's console asks.
 */
async function findPlan(cmdline: AgentCommandLine, location: string | null, bootMedium: string | null, identity: MachineIdentity | undefined): Promise<PlanText | null> {
  if (location) {
    if (planNeedsNetwork(location)) await waitForNetwork(NETWORK_WAIT_MS);
    return readPlanText(location, { ...(bootMedium ? { mediaDevice: bootMedium } : {}) });
  }
  if (!cmdline.server || !identity) return null;
  await waitForNetwork(NETWORK_WAIT_MS);
  const found = await fetchServerPlan(cmdline.server, identity);
  emit({ type: 'log', level: 'info', text: found ? `plan ${found.source} from the deployment server` : `the deployment server has no plan for this machine (${identity.macs.join(', ') || 'no MAC'}); asking at the console` });
  return found;
}

/** What the PE's loader says of the code cache (it sets IMAGEPE_CODE_CACHE); nothing when not started by it. */
function codeCacheState(): { codeCache?: 'accepted' | 'rejected' | 'none' } {
  const v = process.env.IMAGEPE_CODE_CACHE;
  return v === 'accepted' || v === 'rejected' || v === 'none' ? { codeCache: v } : {};
}

/** Runs the agent as the PE starts it; resolves with the exit status. */
export async function runAgent(): Promise<number> {
  outputs = AgentOutputs.fromEnvironment();
  try {
    return await main();
  } catch (e) {
    // deploy() and capture() announce their own `failed` event; this line covers failures outside them.
    emit({ type: 'error', code: (e as { code?: string }).code ?? 'INTERNAL', message: e instanceof Error ? e.message : String(e) });
    return 1;
  } finally {
    if (poster && !(await poster.flush(POSTER_FLUSH_MS))) outputs.event(stampEvent({ type: 'log', level: 'warning', text: `the deployment server did not take every event (${poster.counts.sent} sent)` }) as AgentEvent);
  }
}
