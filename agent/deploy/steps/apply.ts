import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { formatBytes, ImagepeError, MTOOLS_ENV, run, type RunOptions } from '../../../core/index.js';
import * as imaging from '../../../imaging/index.js';
import { MulticastReceiveError, receiveMulticast } from '../multicast.js';
import type { MulticastOffer } from '../multicast-offer.js';
import { defineStep, mountOn, need, scratchDir } from '../../steps/index.js';
import { espOf, partitionNamed, treeMountOptions, treeMounts, type DeployContext } from '../context.js';

/**
 * The images applied: the target's Linux filesystems mounted as one tree (parents first) and each
 * image extracted with its UNIX metadata, or an NTFS volume written directly; files an image has
 * under the ESP's mount point are copied onto the ESP, which is FAT and not mounted.
 */
export const applyStep = defineStep({
  name: 'apply',
  title: 'Applied',
  writesDisk: true,
  async run(ctx: DeployContext, io) {
    const { plan } = ctx;
    const images = need(ctx.images, 'the images');
    const { dir: targetRoot } = await scratchDir(io, 'target');
    ctx.targetRoot = targetRoot;
    for (const m of treeMounts(ctx)) {
      const dir = join(targetRoot, m.mount);
      await mkdir(dir, { recursive: true });
      const options = treeMountOptions(m);
      await mountOn(io, m.partition.node, dir, { fsType: m.partition.fsType!, options, what: `mounting ${m.partition.name} (${m.partition.node}${options ? `, ${options}` : ''}) on ${m.mount}` });
    }
    for (const [i, entry] of plan.apply.entries()) {
      const part = partitionNamed(ctx, entry.partition);
      const image = images[i]!;
      const ntfs = entry.mode === 'ntfs' || (entry.mode === 'auto' && part.fsType === 'ntfs');
      const where = ntfs ? part.node : join(targetRoot, part.mount ?? '/');
      io.info(`applying image ${image.index} "${image.name}" to ${part.name} (${ntfs ? 'NTFS mode' : 'Linux tree with UNIX metadata'})`);
      const options = { unixData: !ntfs, allowNonEmpty: !ntfs, events: io.events, ...(io.signal ? { signal: io.signal } : {}) };
      if (ctx.remote) {
        const streamOptions = { ...options, totalBytes: ctx.remote.sizeBytes, from: ctx.remote.url.href, ...(plan.source.sha256 ? { expectedSha256: plan.source.sha256 } : {}) };
        let streamed: imaging.StreamApplyResult | undefined;
        if (ctx.multicast) {
          try {
            streamed = await applyByMulticast(ctx.multicast, image.index, where, streamOptions);
            io.info(`received ${formatBytes(streamed.bytes)} by multicast from ${ctx.multicast.server} in ${(streamed.durationMs / 1000).toFixed(1)} s; sha256 ${streamed.sha256}`);
          } catch (e) {
            // Only reception is worth another try: a damaged image or a wrong sha256 would be the same over HTTP.
            if (!(e instanceof MulticastReceiveError) || io.signal?.aborted) throw e;
            io.warn(`multicast reception failed (${e.reason}): ${e.message}; applying over HTTP instead`);
          }
        }
        if (!streamed) {
          streamed = await applyFromServer(ctx.remote, image.index, where, streamOptions);
          io.info(`streamed ${formatBytes(streamed.bytes)} from ${ctx.remote.url.href} in ${(streamed.durationMs / 1000).toFixed(1)} s; sha256 ${streamed.sha256}`);
        }
      } else await imaging.apply(need(ctx.wimPath, 'the image'), image.index, where, options);
    }
    const esp = espOf(ctx);
    if (esp?.mount?.startsWith('/')) await moveTreeToFat(join(targetRoot, esp.mount), partitionNamed(ctx, esp.name).node, io.runOpts);
    return images.map((img, i) => `${img.index} "${img.name}" -> ${plan.apply[i]!.partition}`).join(', ');
  },
});

/**
 * Applies one image of a pipable WIM as it downloads: wimlib reads the response body on its
 * standard input, so the PE never holds the image. A body that ends early or a server that goes
 * away fails the apply (wimlib sees the stream end before the image's last file).
 */
async function applyFromServer(remote: imaging.RemoteWim, index: number, where: string, options: imaging.StreamApplyOptions): Promise<imaging.StreamApplyResult> {
  const response = await fetch(remote.url, options.signal ? { signal: options.signal } : {}).catch((e: unknown) => {
    throw new ImagepeError('NOT_FOUND', `${remote.url.href} could not be fetched: ${(e as Error).message}`, { hint: 'Check that the server is still running and reachable.', cause: e });
  });
  if (response.status !== 200 || !response.body) {
    await response.body?.cancel();
    throw new ImagepeError('NOT_FOUND', `${remote.url.href} answered HTTP ${response.status} when the image was fetched to apply`, { hint: 'The image was there when it was checked: see the server\'s log.' });
  }
  const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
  return imaging.applyStream(body, index, where, options);
}

// udp-receiver gives up when no sender shows up in this long beyond the server's own wait for
// more machines, and when a started session goes quiet for RECEIVE_TIMEOUT_S.
const START_GRACE_S = 60;
const RECEIVE_TIMEOUT_S = 60;

/**
 * Applies one image as the server's multicast session sends it: udp-receiver's output goes
 * straight to wimlib. A failed reception stops the apply with a MulticastReceiveError.
 */
async function applyByMulticast(offer: MulticastOffer, index: number, where: string, options: imaging.StreamApplyOptions): Promise<imaging.StreamApplyResult> {
  const reception = receiveMulticast({ server: offer.server, portbase: offer.portbase, startTimeoutSeconds: offer.maxWaitSeconds + START_GRACE_S, receiveTimeoutSeconds: RECEIVE_TIMEOUT_S, ...(options.signal ? { signal: options.signal } : {}) });
  const applying = imaging.applyStream(reception.stream, index, where, { ...options, from: `the multicast session of ${offer.server}` });
  // A failed apply (a damaged image) leaves the receiver waiting on a full pipe: stop it.
  applying.catch(() => reception.stop());
  const [applied, received] = await Promise.allSettled([applying, reception.done]);
  // The receiver's own failure says why the stream ended; wimlib's "ended early" follows from it.
  if (received.status === 'rejected' && received.reason instanceof MulticastReceiveError) throw received.reason;
  if (applied.status === 'rejected') throw applied.reason;
  if (received.status === 'rejected') throw received.reason;
  return applied.value;
}

async function moveTreeToFat(dir: string, node: string, runOpts: (what: string) => RunOptions): Promise<void> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  for (const e of entries) {
    await run('mcopy', ['-s', '-o', '-i', node, join(dir, e), '::/'], { ...runOpts(`copying ${e} to the ESP`), env: MTOOLS_ENV });
    await rm(join(dir, e), { recursive: true, force: true });
  }
}
