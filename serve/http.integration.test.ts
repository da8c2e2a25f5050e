import { MAC_HEADER } from '../agent/server/plans.js';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type RunningServer } from './server.js';

// The HTTP side on 127.0.0.1 with a served folder made here: no DHCP, no TFTP, no interface.
let dir: string;
let server: RunningServer;
const image = randomBytes(3 * 1024 * 1024 + 17);
const MAC = '52-54-00-12-34-56';

const url = (path: string) => new URL(path, server.url).href;
const json = async (path: string) => (await fetch(url(path))).json() as Promise<Record<string, unknown>>;
const post = (path: string, body: string) => fetch(url(path), { method: 'POST', body, headers: { 'content-type': 'application/json' } });
type MachineRow = { mac: string; state: string; detail: string | null; plan: { file: string; status: number } | null; planRequests: unknown[]; fetched: { file: string }[]; hostname: string | null; lastEvent: { type: string } | null };
const machine = async (mac: string) => ((await json('api/machines')).machines as MachineRow[]).find((m) => m.mac === mac);

/** GET with the path and headers sent exactly as written (fetch resolves dots away and adds cache headers to conditional requests). */
function rawGet(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET', headers, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.end();
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'imagepe-serve-http-'));
  await mkdir(join(dir, 'pxe'));
  await mkdir(join(dir, 'plans'));
  await mkdir(join(dir, 'images'));
  await writeFile(join(dir, 'pxe', 'boot.ipxe'), '#!ipxe\n:deploy\nkernel vmlinuz initrd=initrd.img imagepe.mode=deploy\ninitrd initrd.img\nboot\n');
  await writeFile(join(dir, 'pxe', 'vmlinuz'), 'kernel bytes');
  await writeFile(join(dir, 'plans', 'default.yaml'), 'image: server:/images/base.wim\n');
  await writeFile(join(dir, 'plans', '.hidden.yaml'), 'secret\n');
  await writeFile(join(dir, 'images', 'base.wim'), image);
  server = await startServer({ dir, listen: '127.0.0.1', port: 0, dhcp: { mode: 'off' } });
});

afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('imagepe serve over HTTP', () => {
  it('listens on the address it was given, with HTTP only', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(server.tftp).toBe(false);
    expect(server.workDir).toBeNull();
  });

  it('hands out boot.ipxe with the server URL and the boot MAC on every kernel line', async () => {
    const text = await (await fetch(url('boot.ipxe'))).text();
    expect(text).toContain(`kernel vmlinuz initrd=initrd.img imagepe.mode=deploy imagepe.server=${server.url} BOOTIF=01-\${netX/mac:hexhyp}\n`);
    expect(await (await fetch(url('vmlinuz'))).text()).toBe('kernel bytes');
  });

  it('answers a range request of an image with 206 and exactly those bytes', async () => {
    const r = await fetch(url('images/base.wim'), { headers: { range: 'bytes=1048576-1048675' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes 1048576-1048675/${image.length}`);
    expect(Buffer.from(await r.arrayBuffer()).equals(image.subarray(1048576, 1048676))).toBe(true);
    const whole = await fetch(url('images/base.wim'));
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    const etag = whole.headers.get('etag');
    expect(Buffer.from(await whole.arrayBuffer()).equals(image)).toBe(true);
    expect((await rawGet('/images/base.wim', { 'if-none-match': etag! })).status).toBe(304);
  });

  it('serves plans by plain GETs: 404 for a machine without one, 200 for default.yaml, and records both for the machine', async () => {
    // The boot script request with iPXE's MAC ties this address to the machine.
    await fetch(url(`boot.ipxe?mac=${MAC}`));
    expect((await fetch(url(`plans/${MAC}.yaml`))).status).toBe(404);
    const plan = await fetch(url('plans/default.yaml'));
    expect(plan.status).toBe(200);
    expect(await plan.text()).toBe('image: server:/images/base.wim\n');
    const m = await machine('52:54:00:12:34:56');
    expect(m?.planRequests).toHaveLength(2);
    expect(m?.plan).toMatchObject({ file: 'default.yaml', status: 200 });
    expect(m?.fetched.map((f) => f.file)).toContain('boot.ipxe');
  });

  it('refuses path escapes, dot files and directory listings', async () => {
    for (const path of ['/plans/../../../../etc/passwd', '/images/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/plans/..%2f..%2f..%2fetc%2fpasswd', '/%2e%2e/%2e%2e/etc/passwd']) {
      const r = await rawGet(path);
      expect([400, 403, 404]).toContain(r.status);
      expect(r.body).not.toContain('root:');
    }
    expect((await rawGet('/plans/.hidden.yaml')).status).toBe(403);
    expect((await rawGet('/plans/')).status).toBe(404);
    expect((await rawGet('/images')).status).toBe(404);
    expect((await rawGet('/')).status).toBe(404);
  });

  it('takes the PE events as a JSON array or NDJSON, logs them, and moves the machine through deploying to deployed', async () => {
    const ready = { imagepe: 1, type: 'ready', time: '2026-01-01T00:00:00.000Z', mode: 'deploy', node: 'v22', kernel: '6.1', plan: null, disks: [], bootMedium: null, uptimeSeconds: 5 };
    const step = { imagepe: 1, type: 'step', time: '2026-01-01T00:00:01.000Z', step: 'apply', status: 'started' };
    expect((await post(`events/${MAC}`, JSON.stringify([ready, step]))).status).toBe(200);
    let m = await machine('52:54:00:12:34:56');
    expect(m?.state).toBe('deploying');
    expect(m?.detail).toBe('apply started');
    const progress = { imagepe: 1, type: 'progress', time: 't', step: 'apply', phase: 'Extracting file data', unit: 'bytes', done: 50, total: 200 };
    const deployed = { imagepe: 1, type: 'deployed', time: 't2', disk: '/dev/vda', hostname: 'pc1', machineId: null, partitions: [], durationMs: 1, after: 'reboot' };
    expect((await post(`events/${MAC}`, `${JSON.stringify(progress)}\n${JSON.stringify(deployed)}\n`)).status).toBe(200);
    m = await machine('52:54:00:12:34:56');
    expect(m).toMatchObject({ state: 'deployed', hostname: 'pc1', lastEvent: { type: 'deployed' } });
    const lines = (await readFile(join(dir, 'logs', `${MAC}.ndjson`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.type)).toEqual(['ready', 'step', 'progress', 'deployed']);
    expect(lines[0]).toEqual(ready);
  });

  it('marks a machine up when its first-boot report says running, and failed with the state otherwise', async () => {
    const r = await post(`report/${MAC}`, JSON.stringify({ hostname: 'pc1', machineId: 'a'.repeat(32), state: 'running' }));
    expect(await r.json()).toEqual({ state: 'up' });
    expect((await machine('52:54:00:12:34:56'))?.detail).toBe('pc1: system running');
    await post('report/52:54:00:00:00:02', JSON.stringify({ hostname: 'pc2', state: 'maintenance' }));
    expect(await machine('52:54:00:00:00:02')).toMatchObject({ state: 'failed', detail: 'pc2: system maintenance' });
    const log = await readFile(join(dir, 'logs', `${MAC}.ndjson`), 'utf8');
    expect(log.trim().split('\n').pop()).toMatch(/^\{"type":"first-boot-report","time":"[^"]+","state":"running","hostname":"pc1"/);
  });

  it('rejects bodies that are not events, reports without a state, bad MACs and bodies over the limit', async () => {
    expect((await post(`events/${MAC}`, 'not json')).status).toBe(400);
    expect((await post(`events/${MAC}`, '[{"no":"type"}]')).status).toBe(400);
    expect((await post(`report/${MAC}`, '{"hostname":"x"}')).status).toBe(400);
    expect((await post('events/not-a-mac', '[]')).status).toBe(400);
    const big = await post(`events/${MAC}`, JSON.stringify([{ type: 'log', text: 'x'.repeat(2 * 1024 * 1024) }]));
    expect(big.status).toBe(413);
    expect(await big.json()).toEqual({ error: 'request body too large' });
  });

  it('records the plan a machine asked for under the MAC the PE names, whatever address it comes from', async () => {
    const res = await fetch(url('plans/default.yaml'), { headers: { [MAC_HEADER]: '52:54:00:77:00:01' } });
    expect(res.status).toBe(200);
    await res.text();
    const row = await machine('52:54:00:77:00:01');
    expect(row?.plan).toMatchObject({ file: 'default.yaml', status: 200 });
  });

  it('answers 404 for a multicast session it does not run, so the PE streams the image over HTTP', async () => {
    const res = await fetch(url('api/multicast/images/base.wim'));
    expect(res.status).toBe(404);
    await res.text();
  });

  it('keeps the state table in logs/machines.json and names itself in logs/server.json while it runs', async () => {
    const info = JSON.parse(await readFile(join(dir, 'logs', 'server.json'), 'utf8'));
    expect(info).toMatchObject({ url: server.url, pid: process.pid });
    for (let i = 0; i < 50; i++) {
      const t = JSON.parse(await readFile(join(dir, 'logs', 'machines.json'), 'utf8'));
      if (t.machines.some((m: MachineRow) => m.mac === '52:54:00:12:34:56' && m.state === 'up')) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('machines.json never showed the machine up');
  });

  it('remembers its machines across a restart, and removes server.json when it stops', async () => {
    await server.stop();
    expect(existsSync(join(dir, 'logs', 'server.json'))).toBe(false);
    server = await startServer({ dir, listen: '127.0.0.1', port: 0, dhcp: { mode: 'off' } });
    expect((await machine('52:54:00:12:34:56'))?.state).toBe('up');
  });
});
