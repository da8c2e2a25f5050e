import { describeArch, type DnsmasqFact } from './dnsmasq-log.js';

/**
 * What `imagepe serve` knows about each machine, keyed by MAC address: how it booted (from
 * dnsmasq's log and the HTTP requests), which plan it was given, and its state from the PE's
 * events and the deployed system's first-boot report. No I/O: the server feeds it and persists it.
 */

/**
 * booting: seen on the network (DHCP, TFTP, boot script), no PE event yet. deploying / capturing
 * / shell: the PE said it is ready, in that mode. deployed / captured: the PE finished. up: the
 * deployed system booted and systemd reached "running"; degraded: it booted with failed units.
 * failed: the PE failed, or the deployed system reported a state other than running or degraded.
 */
export const MACHINE_STATES = ['booting', 'deploying', 'capturing', 'shell', 'deployed', 'captured', 'up', 'degraded', 'failed'] as const;
export type MachineState = (typeof MACHINE_STATES)[number];

/** One GET under /plans/ that a machine made. */
export interface PlanRequest {
  /** The name asked for: "52-54-00-12-34-56.yaml", "default.yaml". */
  file: string;
  /** HTTP status: 200 when served, 404 when there is no such plan. */
  status: number;
  time: string;
}

/** A boot file a machine fetched. */
export interface Fetch {
  /** TFTP name or HTTP path without the leading "/": "undionly.kpxe", "boot.ipxe", "vmlinuz". */
  file: string;
  via: 'tftp' | 'http';
  time: string;
}

export interface Machine {
  /** "52:54:00:12:34:56". */
  mac: string;
  /** The last address seen for it (DHCP, PXE, HTTP), or null. */
  ip: string | null;
  /** Client architecture (DHCP option 93) from its last PXE or HTTP boot request, or null. */
  arch: number | null;
  /** "BIOS x86", "UEFI x64", "UEFI x64 HTTP", "unknown". */
  archName: string;
  firmware: 'bios' | 'uefi' | null;
  /** Whether it has been seen running iPXE (user class iPXE). */
  ipxe: boolean;
  state: MachineState;
  /** What the state means in words: the current step, the failure, the deployed system's state. */
  detail: string | null;
  /** The file dnsmasq offered it last (a TFTP name or the boot script's URL). */
  bootFile: string | null;
  /** Boot files it fetched in its current boot, oldest first (at most 20). */
  fetched: Fetch[];
  /** The plan it was given (the first 200) in its current boot, else its last plan request, else null. */
  plan: PlanRequest | null;
  /** Every plan request of its current boot, in order (at most 20). */
  planRequests: PlanRequest[];
  /** The last PE event: type and the PE's own time. */
  lastEvent: { type: string; time: string } | null;
  /** From the deployed event or the first-boot report. */
  hostname: string | null;
  /** ISO times. */
  firstSeen: string;
  lastSeen: string;
  stateSince: string;
}

/** A change, as the CLI renders it: the machine after it, and what happened. */
export interface MachineChange {
  machine: Machine;
  /** dhcp, boot-file, fetched, plan, event, report. */
  cause: 'dhcp' | 'boot-file' | 'fetched' | 'plan' | 'event' | 'report';
  /** The state before, or null for a machine seen for the first time. */
  previousState: MachineState | null;
}

/** The fields of an agent event the table reads; anything else in it is kept in the log, not here. */
export interface AgentEventLike {
  type: string;
  time?: string;
  mode?: string;
  step?: string;
  status?: string;
  detail?: string;
  phase?: string;
  done?: number;
  total?: number;
  message?: string;
  code?: string;
  hostname?: string | null;
  disk?: string;
  wim?: string;
}

/** The deployed system's first-boot report (POST /report/<mac>). */
export interface FirstBootReport {
  hostname?: string;
  machineId?: string;
  /** `systemctl is-system-running`: running, degraded, maintenance, starting, stopping, ... */
  state: string;
  /** Space-separated names of failed units, when the reporter sends them. */
  failedUnits?: string;
}

/**
 * The state and detail after one PE event; unknown event types change nothing (a newer PE may
 * send types this server does not know, and its events are still logged).
 */
export function stateAfterEvent(state: MachineState, detail: string | null, e: AgentEventLike): { state: MachineState; detail: string | null } {
  switch (e.type) {
    case 'ready':
      return { state: e.mode === 'capture' ? 'capturing' : e.mode === 'shell' ? 'shell' : 'deploying', detail: 'PE ready' };
    case 'started':
    case 'step': {
      const text = [e.step, e.status].filter(Boolean).join(' ') + (e.detail ? `: ${e.detail}` : '');
      // A PE whose ready event was missed (posted before the server started) is working all the same.
      return { state: state === 'booting' ? 'deploying' : state, detail: text || detail };
    }
    case 'progress': {
      const pct = e.total ? ` ${Math.floor(((e.done ?? 0) / e.total) * 100)}%` : '';
      return { state: state === 'booting' ? 'deploying' : state, detail: `${e.step ?? ''}: ${e.phase ?? ''}${pct}`.trim() };
    }
    case 'done':
    case 'deployed':
      return { state: 'deployed', detail: [e.hostname, e.disk].filter(Boolean).join(' on ') || 'deployed' };
    case 'captured':
      return { state: 'captured', detail: e.wim ?? 'captured' };
    case 'failed':
      return { state: 'failed', detail: `${e.step ? `${e.step}: ` : ''}${e.message ?? e.code ?? 'failed'}` };
    case 'error':
      return { state: 'failed', detail: `${e.code ? `${e.code}: ` : ''}${e.message ?? 'error'}` };
    default:
      return { state, detail };
  }
}

/** The state a first-boot report puts a machine in: running → up, degraded → degraded, anything else → failed. */
export function stateAfterReport(report: FirstBootReport): { state: MachineState; detail: string } {
  const who = report.hostname ? `${report.hostname}: ` : '';
  if (report.state === 'running') return { state: 'up', detail: `${who}system running` };
  if (report.state === 'degraded') return { state: 'degraded', detail: `${who}system degraded${report.failedUnits?.trim() ? ` (failed: ${report.failedUnits.trim()})` : ''}` };
  return { state: 'failed', detail: `${who}system ${report.state || 'state unknown'}` };
}

const MAX_LIST = 20;
const MAX_PENDING_ADDRESSES = 256;

/** Requests from an address not yet tied to a MAC, replayed once it is. */
interface Pending {
  fetched: Fetch[];
  plans: PlanRequest[];
}

export class MachineTable {
  private readonly machines = new Map<string, Machine>();
  private readonly macByIp = new Map<string, string>();
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<(change: MachineChange) => void>();

  constructor(
    private readonly now: () => Date = () => new Date(),
    initial: readonly Machine[] = [],
  ) {
    for (const m of initial) {
      this.machines.set(m.mac, { ...m });
      if (m.ip) this.macByIp.set(m.ip, m.mac);
    }
  }

  /** Calls `listener` on every change; returns a function that stops it. */
  onChange(listener: (change: MachineChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every machine, the most recently seen first. Copies: changing them changes nothing here. */
  list(): Machine[] {
    return [...this.machines.values()].sort((a, b) => b.lastSeen.localeCompare(a.lastSeen)).map((m) => structuredClone(m));
  }

  get(mac: string): Machine | undefined {
    const m = this.machines.get(mac);
    return m && structuredClone(m);
  }

  /** The MAC last seen at this address. */
  macOf(ip: string): string | undefined {
    return this.macByIp.get(ip);
  }

  /** Applies a fact from dnsmasq's log. */
  applyDnsmasq(fact: DnsmasqFact): void {
    switch (fact.kind) {
      case 'dhcp': {
        const bootRequest = /^(PXEClient|HTTPClient)/.test(fact.vendorClass ?? '');
        const existing = this.machines.get(fact.mac);
        // Other DHCP clients on the network (in DHCP mode) are not machines being deployed.
        if (!bootRequest && !existing) {
          if (fact.ip && fact.message === 'DHCPACK') this.learn(fact.mac, fact.ip);
          return;
        }
        const before = existing ? existing.state : null;
        const m = this.touch(fact.mac);
        // A PXE or HTTP boot request from a machine past its boot is a new network boot: a
        // redeploy, or a PE that restarted. The PE's and the deployed system's own DHCP requests
        // carry other vendor classes and change nothing.
        const newBoot = bootRequest && existing !== undefined && m.state !== 'booting';
        if (newBoot) this.newBoot(m);
        const was = { arch: m.arch, ipxe: m.ipxe };
        if (bootRequest) {
          m.arch = fact.arch;
          const a = describeArch(fact.arch);
          m.archName = a.name;
          m.firmware = a.firmware;
        }
        if (fact.userClass === 'iPXE' || fact.tags.includes('ipxe')) m.ipxe = true;
        if (fact.ip && fact.message === 'DHCPACK') this.learn(fact.mac, fact.ip);
        // One exchange logs several requests (DISCOVER, REQUEST, the PXE boot server's); a line for the first is enough.
        if (bootRequest && (!existing || newBoot || was.arch !== m.arch || was.ipxe !== m.ipxe)) this.emit(m, 'dhcp', before);
        return;
      }
      case 'address':
        this.learn(fact.mac, fact.ip);
        return;
      case 'boot-file': {
        const m = this.touch(fact.mac);
        if (m.bootFile === fact.file) return;
        m.bootFile = fact.file;
        this.emit(m, 'boot-file', m.state);
        return;
      }
      case 'tftp-sent':
        this.fetched(fact.ip, fact.file, 'tftp');
        return;
      default:
        return;
    }
  }

  /**
   * Ties an address to a MAC (a DHCP lease, a PXE request, the MAC in a boot script URL or an
   * event URL). Only `create` adds a machine not seen before; requests that waited for the
   * address are then counted for it.
   */
  learn(mac: string, ip: string, create = false): void {
    this.macByIp.set(ip, mac);
    if (!create && !this.machines.has(mac)) return;
    const m = this.touch(mac);
    m.ip = ip;
    const waiting = this.pending.get(ip);
    if (!waiting) return;
    this.pending.delete(ip);
    for (const f of waiting.fetched) this.fetched(ip, f.file, f.via, f.time);
    for (const p of waiting.plans) this.planRequested(ip, p.file, p.status, p.time);
  }

  /** A boot file fetched over TFTP or HTTP by the client at `ip`. */
  fetched(ip: string, file: string, via: 'tftp' | 'http', time = this.now().toISOString()): void {
    const mac = this.macByIp.get(ip);
    if (!mac) {
      this.pendingFor(ip).fetched.push({ file, via, time });
      return;
    }
    const m = this.touch(mac);
    m.fetched.push({ file, via, time });
    if (m.fetched.length > MAX_LIST) m.fetched.shift();
    this.emit(m, 'fetched', m.state);
  }

  /** A GET of plans/<file> from `ip`, and its status. */
  planRequested(ip: string, file: string, status: number, time = this.now().toISOString()): void {
    const mac = this.macByIp.get(ip);
    if (!mac) {
      this.pendingFor(ip).plans.push({ file, status, time });
      return;
    }
    const m = this.touch(mac);
    const request = { file, status, time };
    m.planRequests.push(request);
    if (m.planRequests.length > MAX_LIST) m.planRequests.shift();
    // The machine was given the first plan that existed; until then, show the last miss.
    if (!m.plan || m.plan.status !== 200) m.plan = request;
    this.emit(m, 'plan', m.state);
  }

  /** PE events posted by the machine `mac` from `ip`. */
  events(mac: string, ip: string | null, events: readonly AgentEventLike[]): void {
    if (events.length === 0) return;
    if (ip) this.learn(mac, ip, true);
    const m = this.touch(mac);
    const before = m.state;
    for (const e of events) {
      const next = stateAfterEvent(m.state, m.detail, e);
      this.setState(m, next.state);
      m.detail = next.detail;
      if ((e.type === 'deployed' || e.type === 'done') && e.hostname) m.hostname = e.hostname;
      m.lastEvent = { type: e.type, time: e.time ?? this.now().toISOString() };
    }
    this.emit(m, 'event', before);
  }

  /** The deployed system's first-boot report from `ip`. */
  report(mac: string, ip: string | null, report: FirstBootReport): void {
    if (ip) this.learn(mac, ip, true);
    const m = this.touch(mac);
    const before = m.state;
    const next = stateAfterReport(report);
    this.setState(m, next.state);
    m.detail = next.detail;
    if (report.hostname) m.hostname = report.hostname;
    this.emit(m, 'report', before);
  }

  private touch(mac: string): Machine {
    const now = this.now().toISOString();
    let m = this.machines.get(mac);
    if (!m) {
      m = { mac, ip: null, arch: null, archName: 'unknown', firmware: null, ipxe: false, state: 'booting', detail: null, bootFile: null, fetched: [], plan: null, planRequests: [], lastEvent: null, hostname: null, firstSeen: now, lastSeen: now, stateSince: now };
      this.machines.set(mac, m);
    }
    m.lastSeen = now;
    return m;
  }

  private newBoot(m: Machine): void {
    this.setState(m, 'booting');
    m.detail = null;
    m.bootFile = null;
    m.fetched = [];
    m.plan = null;
    m.planRequests = [];
  }

  private setState(m: Machine, state: MachineState): void {
    if (m.state === state) return;
    m.state = state;
    m.stateSince = this.now().toISOString();
  }

  private pendingFor(ip: string): Pending {
    let p = this.pending.get(ip);
    if (!p) {
      p = { fetched: [], plans: [] };
      this.pending.set(ip, p);
      if (this.pending.size > MAX_PENDING_ADDRESSES) this.pending.delete(this.pending.keys().next().value!);
    }
    if (p.fetched.length > MAX_LIST) p.fetched.shift();
    if (p.plans.length > MAX_LIST) p.plans.shift();
    return p;
  }

  private emit(m: Machine, cause: MachineChange['cause'], previousState: MachineState | null): void {
    const change = { machine: structuredClone(m), cause, previousState };
    for (const l of this.listeners) l(change);
  }
}
