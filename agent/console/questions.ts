import { CONFIRM_PROMPT } from './prompts.js';
import { CLAIM_PROMPT } from './claim.js';

/**
 * The questions, word for word. A harness on the serial port waits for these texts before it
 * types; changing one breaks it, so they live in one place. Each is written followed by
 * " [default]: ", ": " or, after "?", a space. The default is the earlier answer when the
 * question comes again.
 */
export const QUESTIONS = {
  claim: CLAIM_PROMPT,
  mode: 'Deploy an image to this machine, or capture it to an image? [d/c]',
  share: 'Share URL',
  user: 'User name for the share (DOMAIN\\user for a domain)',
  password: 'Password (not shown):',
  image: 'Image number',
  disk: 'Disk number',
  hostname: 'Host name for the deployed system',
  confirm: CONFIRM_PROMPT,
  referenceDisk: 'Reference disk number',
  partition: 'Partition number, or r for the root filesystem',
  generalize: 'Generalize the reference system first? [y/n]',
  destination: 'WIM number to append to, or n for a new WIM file',
  wimFile: 'New WIM file on the share',
  imageName: 'Image name',
  description: 'Description (optional)',
  compression: 'Compression, lzx or xpress',
  next: '[r]eboot, [p]ower off, [s]hell, [a]gain?',
} as const;
