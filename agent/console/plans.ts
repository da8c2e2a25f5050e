import type { LayoutInput } from '../../partition/index.js';
import { FROM_IMAGE, parseCapturePlan, parsePlan, type CapturePlan, type DeployPlan } from '../plan/index.js';
import type { ShareCredentials } from '../share/index.js';

/**
 * The layout an image without a recorded one is deployed with: templates/layouts/uefi-bios-gpt.yaml,
 * kept here so the PE needs no template files (a unit test keeps the two the same).
 */
export const STANDARD_LAYOUT = {
  table: 'gpt',
  firmware: 'both',
  wipe: false,
  partitions: [
    { name: 'ESP', size: '512MiB', type: 'esp', format: 'vfat', label: 'ESP', mount: '/boot/efi' },
    { name: 'bios-boot', size: '1MiB', type: 'bios-boot' },
    { name: 'root', size: 'rest', type: 'linux', format: 'ext4', label: 'root', mount: '/' },
  ],
} as const satisfies LayoutInput;

/** The standard layout in one line, for the technician. */
export const STANDARD_LAYOUT_TEXT = 'GPT: ESP 512 MiB (vfat), bios-boot 1 MiB, root ext4 (the rest)';

export interface DeployAnswers {
  url: string;
  credentials: ShareCredentials | undefined;
  file: string;
  index: number;
  layoutRecorded: boolean;
  disk: string;
  hostname: string;
}

/**
 * The deploy plan the technician's answers make, validated like a plan file. The disk is wiped
 * because the technician has just confirmed it; after is shell because the session itself asks
 * what comes next.
 */
export function deployPlanFromAnswers(a: DeployAnswers): DeployPlan {
  return parsePlan(
    {
      source: { url: a.url, image: a.file, index: a.index, ...(a.credentials ? { credentials: credentialsOf(a.credentials) } : {}) },
      target: { disk: { path: a.disk }, wipe: true, layout: a.layoutRecorded ? FROM_IMAGE : STANDARD_LAYOUT },
      // With a recorded layout the image goes where the capture found it.
      ...(a.layoutRecorded ? {} : { apply: [{ partition: 'root' }] }),
      specialize: { hostname: a.hostname },
      bootloader: { type: 'grub', firmware: 'both' },
      after: 'shell',
      logs: true,
    },
    "the technician's answers",
  );
}

export interface CaptureAnswers {
  url: string;
  credentials: ShareCredentials | undefined;
  disk: string;
  partition: 'root' | { number: number };
  generalize: boolean;
  file: string;
  append: boolean;
  name: string;
  description: string;
  compression: 'lzx' | 'xpress';
}

export function capturePlanFromAnswers(a: CaptureAnswers): CapturePlan {
  return parseCapturePlan(
    {
      kind: 'capture',
      source: { disk: { path: a.disk }, partition: a.partition },
      generalize: a.generalize,
      destination: {
        url: a.url,
        file: a.file,
        ...(a.credentials ? { credentials: credentialsOf(a.credentials) } : {}),
        name: a.name,
        description: a.description,
        compression: a.compression,
        append: a.append,
        integrity: true,
      },
      after: 'shell',
      logs: true,
    },
    "the technician's answers",
  );
}

function credentialsOf(c: ShareCredentials): { username: string; password: string; domain?: string } {
  return { username: c.username, password: c.password, ...(c.domain ? { domain: c.domain } : {}) };
}
