import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { ImagepeError } from '../core/index.js';
import { normalizeBaseUrl, rewriteGrubConfig, rewriteIpxeScript } from './boot-script.js';
import { normalizeMac } from './mac.js';
import type { AgentEventLike, FirstBootReport, MachineTable } from './machines.js';
import type { ServerRecords } from './store.js';
import { MAC_HEADER } from '../agent/server/plans.js';
import type { MulticastOffer } from '../agent/deploy/multicast-offer.js';

/**
 * The HTTP side of `imagepe serve`, on express: the boot script with the server's URL in it, the
 * PXE bundle and iPXE's loaders for the boot chain, plans and images from the served folder
 * (express.static: range requests, ETags, no listings, no dot files, no escapes), the PE's events,
 * the deployed systems' first-boot reports, and the machine table as JSON.
 */
export interface HttpSiteOptions {
  /** The served folder: plans/ and images/ are served from it. */
  dir: string;
  /** The PXE bundle (imagepe build's out/pxe). */
  pxeDir: string;
  /** The base URL the PE is told (imagepe.server=), ending in "/". */
  publicUrl: string;
  table: MachineTable;
  records: ServerRecords;
  /** Where iPXE's loaders are, served at /ipxe/ for UEFI HTTP boot; default Debian's /usr/lib/ipxe. */
  ipxeDir?: string;
  /** Largest request bodies accepted; default 1 MiB of events per POST, 64 KiB per report. */
  limits?: { eventsBytes?: number; reportBytes?: number };
  /** Every request once answered, for the CLI's verbose view. */
  onRequest?: (request: { ip: string; method: string; path: string; status: number }) => void;
  /** The multicast session sent for an image path ("/images/base.wim"), if any. */
  multicast?: (imagePath: string) => MulticastOffer | undefined;
}

/** iPXE's programs served at /ipxe/: the UEFI one for HTTP boot clients; the BIOS one for completeness. */
const IPXE_FILES = ['snponly.efi', 'undionly.kpxe'];
/** Files of the PXE bundle a machine fetches while it boots, recorded as its boot chain. */
const BOOT_CHAIN = /^\/(vmlinuz|initrd\.img|bootx64\.efi|grubx64\.efi|mmx64\.efi|grub\.cfg|grub\/grub\.cfg|ipxe\/[\w.-]+)$/;

/** "::ffff:10.0.0.5" (an IPv4 client of a dual-stack socket) → "10.0.0.5". */
export function clientAddress(req: Request): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/**
 * A POST body of agent events: a JSON array (what the PE sends), one JSON object, or NDJSON.
 * Throws INVALID_INPUT when it is none of these or an element is not an object with a string `type`.
 */
export function parseEventsBody(text: string): AgentEventLike[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  let values: unknown[];
  try {
    const whole = JSON.parse(trimmed) as unknown;
    values = Array.isArray(whole) ? whole : [whole];
  } catch {
    values = trimmed.split('\n').filter((l) => l.trim() !== '').map((l, i) => {
      try {
        return JSON.parse(l) as unknown;
      } catch {
        throw new ImagepeError('INVALID_INPUT', `line ${i + 1} of the events is not JSON`);
      }
    });
  }
  values.forEach((v, i) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof (v as { type?: unknown }).type !== 'string') {
      throw new ImagepeError('INVALID_INPUT', `event ${i + 1} is not an object with a string "type"`);
    }
  });
  return values as AgentEventLike[];
}

/** A first-boot report body: JSON with a string `state`. Throws INVALID_INPUT otherwise. */
export function parseReportBody(text: string): FirstBootReport {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ImagepeError('INVALID_INPUT', 'the report is not JSON');
  }
  const r = v as Record<string, unknown>;
  if (typeof v !== 'object' || v === null || typeof r.state !== 'string') throw new ImagepeError('INVALID_INPUT', 'the report needs a string "state" (systemctl is-system-running)');
  for (const k of ['hostname', 'machineId', 'failedUnits']) {
    if (r[k] !== undefined && typeof r[k] !== 'string') throw new ImagepeError('INVALID_INPUT', `the report's "${k}" is not a string`);
  }
  return { state: r.state, ...(typeof r.hostname === 'string' ? { hostname: r.hostname } : {}), ...(typeof r.machineId === 'string' ? { machineId: r.machineId } : {}), ...(typeof r.failedUnits === 'string' ? { failedUnits: r.failedUnits } : {}) };
}

export function createHttpSite(o: HttpSiteOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', 'strong');
  const publicUrl = normalizeBaseUrl(o.publicUrl);
  const ipxeDir = o.ipxeDir ?? '/usr/lib/ipxe';
  const staticOptions = { index: false, dotfiles: 'deny', redirect: false, fallthrough: false } as const;

  app.use((req, res, next) => {
    // Read now: while a mounted handler (/plans) runs, express strips its mount point from the path.
    const path = req.path;
    res.on('finish', () => {
      const ip = clientAddress(req);
      o.onRequest?.({ ip, method: req.method, path, status: res.statusCode });
      if (req.method !== 'GET' && req.method !== 'HEAD') return;
      // The PE names its MAC on plan requests: behind NAT or a port forward every machine has one address.
      const named = typeof req.headers[MAC_HEADER] === 'string' ? normalizeMac(req.headers[MAC_HEADER]) : undefined;
      if (named && path.startsWith('/plans/')) o.table.learn(named, ip, true);
      if (path.startsWith('/plans/') && (res.statusCode === 200 || res.statusCode === 206 || res.statusCode === 304 || res.statusCode === 404)) {
        // 304 is a plan the machine already had: it was given it all the same.
        o.table.planRequested(ip, safeDecode(path.slice('/plans/'.length)), res.statusCode === 404 ? 404 : 200);
      } else if (BOOT_CHAIN.test(path) && res.statusCode < 400) {
        o.table.fetched(ip, path.slice(1), 'http');
      }
    });
    next();
  });

  // The boot script: iPXE may pass its MAC (?mac=${netX/mac:hexhyp}), which ties its address to it.
  app.get('/boot.ipxe', async (req, res) => {
    const ip = clientAddress(req);
    const mac = typeof req.query.mac === 'string' ? normalizeMac(req.query.mac) : undefined;
    if (mac) o.table.learn(mac, ip, true);
    const script = await readFile(join(o.pxeDir, 'boot.ipxe'), 'utf8');
    o.table.fetched(ip, 'boot.ipxe', 'http');
    res.type('text/plain').set('Cache-Control', 'no-store').send(rewriteIpxeScript(script, publicUrl));
  });
  for (const path of ['grub.cfg', 'grub/grub.cfg']) {
    app.get(`/${path}`, async (_req, res) => {
      res.type('text/plain').set('Cache-Control', 'no-store').send(rewriteGrubConfig(await readFile(join(o.pxeDir, path), 'utf8'), publicUrl));
    });
  }
  app.get('/ipxe/:file', (req, res, next) => {
    const file = req.params.file;
    if (!IPXE_FILES.includes(file)) return next();
    res.sendFile(file, { root: ipxeDir, dotfiles: 'deny' }, (e) => e && next(e));
  });

  app.use('/plans', express.static(join(o.dir, 'plans'), { ...staticOptions, etag: true, lastModified: true, cacheControl: false }));
  app.use('/images', express.static(join(o.dir, 'images'), { ...staticOptions, acceptRanges: true, etag: true }));

  const eventsBody = express.text({ type: () => true, limit: o.limits?.eventsBytes ?? 1024 * 1024 });
  app.post('/events/:mac', eventsBody, async (req, res) => {
    const mac = macParam(req);
    const events = parseEventsBody(typeof req.body === 'string' ? req.body : '');
    await o.records.appendEvents(mac, events.map((e) => JSON.stringify(e)));
    o.table.events(mac, clientAddress(req), events);
    res.json({ accepted: events.length });
  });
  const reportBody = express.text({ type: () => true, limit: o.limits?.reportBytes ?? 64 * 1024 });
  app.post('/report/:mac', reportBody, async (req, res) => {
    const mac = macParam(req);
    const report = parseReportBody(typeof req.body === 'string' ? req.body : '');
    // Kept in the machine's log beside the PE's events, stamped with the server's time.
    await o.records.appendEvents(mac, [JSON.stringify({ type: 'first-boot-report', time: new Date().toISOString(), ...report })]);
    o.table.report(mac, clientAddress(req), report);
    const machine = o.table.get(mac);
    res.json({ state: machine?.state ?? null });
  });
  // How a PE that streams an image joins its multicast session; 404 (as from any static server) means HTTP.
  app.get(/^\/api\/multicast(\/.+)$/, (req, res) => {
    const offer = o.multicast?.(safeDecode((req.params as Record<string, string>)[0] ?? ''));
    if (!offer) return void res.status(404).json({ error: 'no multicast session for this image' });
    res.set('Cache-Control', 'no-store').json(offer);
  });
  app.get('/api/machines', (_req, res) => {
    res.set('Cache-Control', 'no-store').json({ server: publicUrl, machines: o.table.list() });
  });

  // The rest of the bundle at the root: vmlinuz and initrd.img beside boot.ipxe, the signed chain.
  app.use('/', express.static(o.pxeDir, { ...staticOptions, acceptRanges: true, etag: true }));

  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  // Express 5 hands rejected promises of async handlers here too.
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const e = err as { status?: number; statusCode?: number; type?: string; message?: string };
    const status = err instanceof ImagepeError && err.code === 'INVALID_INPUT' ? 400 : (e.status ?? e.statusCode ?? 500);
    const message =
      e.type === 'entity.too.large' ? 'request body too large' : status === 404 ? 'not found' : status === 403 ? 'forbidden' : status >= 500 ? 'internal error' : (e.message ?? 'bad request');
    res.status(status).json({ error: message });
  });
  return app;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function macParam(req: Request): string {
  const raw = req.params.mac;
  const mac = typeof raw === 'string' ? normalizeMac(raw) : undefined;
  if (!mac) throw new ImagepeError('INVALID_INPUT', `"${String(raw)}" is not a MAC address (52-54-00-12-34-56)`);
  return mac;
}

export interface HttpListener {
  server: Server;
  address: string;
  port: number;
  /** Stops taking connections and ends the open ones (a large image download) after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Listens on `host`:`port` (0 picks a free port) with no handler yet: the caller learns the port
 * actually bound, builds the site with it, and attaches it (server.on('request', app)). Throws
 * REFUSED when the port is taken or needs privileges, NOT_FOUND when the address is not this
 * machine's, COMMAND_TIMEOUT when listening does not finish within `timeoutMs`.
 */
export async function listenHttp(host: string, port: number, timeoutMs = 10_000): Promise<HttpListener> {
  const server = createServer();
  // Large images on slow links: no total request timeout, but a dead peer is dropped.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new ImagepeError('COMMAND_TIMEOUT', `the HTTP server did not start listening on ${host}:${port} within ${timeoutMs / 1000} s`)), timeoutMs);
    server.once('listening', () => {
      clearTimeout(timer);
      resolve();
    });
    server.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      server.close();
      if (e.code === 'EADDRINUSE') reject(new ImagepeError('REFUSED', `port ${port} on ${host} is already in use`, { hint: 'Stop the program using it or pick another with --port.', cause: e }));
      else if (e.code === 'EACCES') reject(new ImagepeError('REFUSED', `listening on port ${port} needs root`, { hint: 'Pick a port above 1023 with --port, or run as root.', cause: e }));
      else if (e.code === 'EADDRNOTAVAIL') reject(new ImagepeError('NOT_FOUND', `${host} is not an address of this machine`, { hint: 'Give --listen one of its addresses (ip -4 addr).', cause: e }));
      else reject(e);
    });
    server.listen({ host, port, exclusive: true });
  });
  const bound = server.address() as AddressInfo;
  return {
    server,
    address: bound.address,
    port: bound.port,
    close: (graceMs = 2_000) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
