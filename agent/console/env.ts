import type { CaptureRunOptions, CaptureRunResult } from '../capture/index.js';
import type { DeployOptions, DeployResult } from '../deploy/index.js';
import type { Disk, RunEvent } from '../events/index.js';
import type { CapturePlan, DeployPlan, MachineFacts } from '../plan/index.js';
import type { MapOptions, MappedShare, ShareCredentials } from '../share/index.js';

/** What the session needs from the agent: the machine's facts and the real runners, passed in. */
export interface SessionEnv {
  /** The disks the agent may work on; the boot medium is already left out. */
  disks: readonly Disk[];
  bootMedium: string | null;
  /** imagepe.share= from the kernel command line: the default answer for the share. */
  defaultShare?: string;
  /** For hostname tokens. */
  facts: MachineFacts;
  mapShare(source: { url: string; image: string; credentials?: ShareCredentials }, options?: MapOptions): Promise<MappedShare>;
  deploy(plan: DeployPlan, options: DeployOptions): Promise<DeployResult>;
  capture(plan: CapturePlan, options: CaptureRunOptions): Promise<CaptureRunResult>;
  /** Also gets every event of a run (the agent's log and the other consoles). */
  events?: (event: RunEvent) => void;
  /** Waits until the network is up; called before an smb or nfs share is mapped. */
  waitForNetwork?: () => Promise<unknown>;
  /** How long mapping a share may take, and how often the wait is reported (default MAP_LIMIT_MS, MAP_TICK_MS). */
  mapWait?: { limitMs: number; tickMs: number };
}

/** A share the technician named and the session could map. */
export interface ShareAnswer {
  url: string;
  credentials: ShareCredentials | undefined;
}

/**
 * What the technician answered so far in the session, kept so that a question asked again (after
 * "q", a refused confirmation, or another job) offers the earlier answer as its default. Rows of
 * a table are kept by what they name, not by number: the table may have changed.
 */
export interface Answers {
  mode?: 'd' | 'c';
  share?: ShareAnswer;
  /** The image as "file#index". */
  image?: string;
  /** A disk's path, for deploy. */
  disk?: string;
  /** The host name as typed, tokens and all. */
  hostname?: string;
  referenceDisk?: string;
  /** "r" or the partition's path. */
  partition?: string;
  generalize?: 'y' | 'n';
  /** "n" or the WIM file appended to. */
  destination?: string;
  wimFile?: string;
  imageName?: string;
  description?: string;
  compression?: string;
}

/** How a deploy or capture the session ran ended. */
export interface Outcome {
  action: 'deploy' | 'capture';
  ok: boolean;
  /** The summary as shown, one item per line. */
  lines: string[];
  durationMs: number;
  failure?: {
    step: string;
    code: string;
    message: string;
    /** Whether the disk was written to (deploy), or the reference generalized (capture); undefined when not known. */
    diskTouched: boolean | undefined;
  };
}
