import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, mkdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { parseAgentCommandLine } from '../cmdline.js';
import type { AgentEvent } from '../events/index.js';
import { bootifMac, EventPoster, fetchServerPlan, firstBootScript, firstBootUnit, installFirstBootReport, orderMacs, planCandidates, readMachineIdentity, resolveServerUrl, usableSerial, usableUuid } from './index.js';

/** A loopback HTTP server answering with `handle`; returns its base URL. */
async function listen(handle: (req: IncomingMessage, body: string) => { status: number; body?: string }): Promise<{ server: Server; base: URL }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const r = handle(req, body);
      res.writeHead(r.status).end(r.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`) };
}

const log = (text: string, i = 0): AgentEvent => ({ imagepe: 1, time: `t${i}`, type: 'log', level: 'info', text }) as unknown as AgentEvent;

describe('the machine as a deployment server knows it', () => {
  it('reads BOOTIF= as iPXE and pxelinux write it, and ignores anything else', () => {
    expect(bootifMac('01-52-54-00-AB-cd-0f')).toBe('52:54:00:ab:cd:0f');
    expect(bootifMac('52-54-00-ab-cd-0f')).toBeNull();
    expect(bootifMac(undefined)).toBeNull();
  });

  it('takes imagepe.server= and BOOTIF= from the kernel command line', () => {
    const c = parseAgentCommandLine('quiet imagepe.server=http://10.0.0.1:8080 BOOTIF=01-52-54-00-12-34-56 imagepe.mode=deploy');
    expect(c.server?.href).toBe('http://10.0.0.1:8080/');
    expect(c.bootMac).toBe('52:54:00:12:34:56');
    expect(parseAgentCommandLine('imagepe.server=ftp://x').server).toBeNull();
  });

  it('leaves out the placeholders firmware puts in unset DMI fields', () => {
    expect(usableSerial('To Be Filled By O.E.M.')).toBeUndefined();
    expect(usableSerial('0')).toBeUndefined();
    expect(usableSerial('../etc')).toBeUndefined();
    expect(usableSerial('CZ1234ABC')).toBe('CZ1234ABC');
    expect(usableUuid('00000000-0000-0000-0000-000000000000')).toBeUndefined();
    expect(usableUuid('4C4C4544-0042-3510-8052-B4C04F4E3332')).toBe('4c4c4544-0042-3510-8052-b4c04f4e3332');
  });

  it('puts the boot interface first and reads the rest from sysfs', async () => {
    const sys = await mkdtemp(join(tmpdir(), 'imagepe-sys-'));
    try {
      const nic = async (name: string, mac: string, type = '1') => {
        await mkdir(join(sys, 'class/net', name), { recursive: true });
        await writeFile(join(sys, 'class/net', name, 'address'), `${mac}\n`);
        await writeFile(join(sys, 'class/net', name, 'type'), `${type}\n`);
      };
      await nic('lo', '00:00:00:00:00:00', '772');
      await nic('ens3', '52:54:00:00:00:01');
      await nic('ens4', '52:54:00:00:00:02');
      await nic('sit0', '00:00:00:00:00:00', '776');
      await mkdir(join(sys, 'class/dmi/id'), { recursive: true });
      await writeFile(join(sys, 'class/dmi/id/product_uuid'), '11111111-2222-3333-4444-555555555555\n');
      await writeFile(join(sys, 'class/dmi/id/product_serial'), 'Not Specified\n');
      const id = await readMachineIdentity('52:54:00:00:00:02', sys);
      expect(id).toEqual({ macs: ['52:54:00:00:00:02', '52:54:00:00:00:01'], uuid: '11111111-2222-3333-4444-555555555555', serial: undefined });
      expect(planCandidates(id)).toEqual(['52-54-00-00-00-02.yaml', '52-54-00-00-00-01.yaml', '11111111-2222-3333-4444-555555555555.yaml', 'default.yaml']);
    } finally {
      await rm(sys, { recursive: true, force: true });
    }
    expect(orderMacs(['AA:BB:CC:00:00:01'], 'aa:bb:cc:00:00:01')).toEqual(['aa:bb:cc:00:00:01']);
  });
});

describe('plans from the deployment server', () => {
  const id = { macs: ['52:54:00:00:00:01'], uuid: 'u-1111-2222-3333-444444444444', serial: 'SN1' };

  it('takes the most specific plan the server has, and says where it came from', async () => {
    const asked: string[] = [];
    const { server, base } = await listen((req) => {
      asked.push(req.url!);
      return req.url === '/plans/SN1.yaml' ? { status: 200, body: 'kind: deploy\n' } : { status: 404 };
    });
    try {
      const plan = await fetchServerPlan(base, id);
      expect(plan).toEqual({ text: 'kind: deploy\n', source: new URL('plans/SN1.yaml', base).href });
      expect(asked).toEqual(['/plans/52-54-00-00-00-01.yaml', '/plans/u-1111-2222-3333-444444444444.yaml', '/plans/SN1.yaml']);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('answers null when the server has none for this machine, and fails when the server errs', async () => {
    let status = 404;
    const { server, base } = await listen(() => ({ status }));
    try {
      await expect(fetchServerPlan(base, id)).resolves.toBeNull();
      status = 500;
      await expect(fetchServerPlan(base, id)).rejects.toThrow(/HTTP 500/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
    await expect(fetchServerPlan(base, id, { timeoutMs: 2_000 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('resolves server: source urls against the server the PE booted from', () => {
    const server = new URL('http://10.0.0.1:8080/');
    expect(resolveServerUrl('server:/images', server)).toBe('http://10.0.0.1:8080/images');
    expect(resolveServerUrl('server:/images/', server)).toBe('http://10.0.0.1:8080/images');
    expect(resolveServerUrl('smb://x/y', null)).toBe('smb://x/y');
    expect(() => resolveServerUrl('server:/images', null)).toThrow(/not booted from one/);
  });
});

describe('events posted to the deployment server', () => {
  it('delivers every event in order, in batches, once the server answers', async () => {
    const got: AgentEvent[] = [];
    let up = false;
    const { server, base } = await listen((req, body) => {
      if (!up) return { status: 503 };
      expect(req.headers['content-type']).toBe('application/json');
      got.push(...(JSON.parse(body) as AgentEvent[]));
      return { status: 204 };
    });
    try {
      const poster = new EventPoster({ url: new URL('events/52-54-00-00-00-01', base), retryMs: 50 });
      for (let i = 0; i < 5; i++) poster.push(log(`line ${i}`, i));
      await new Promise((r) => setTimeout(r, 200));
      expect(got).toHaveLength(0);
      up = true;
      expect(await poster.flush(5_000)).toBe(true);
      expect(got.map((e) => (e as { text: string }).text)).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
      expect(poster.counts.failedPosts).toBeGreaterThan(0);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('keeps only the newest progress of a phase while the server is away, and gives up at flush time', async () => {
    const { server, base } = await listen(() => ({ status: 503 }));
    try {
      const poster = new EventPoster({ url: new URL('events/x', base), retryMs: 20, maxQueued: 3 });
      const progress = (done: number) => ({ imagepe: 1, time: 't', type: 'progress', phase: 'apply', done, total: 10 }) as unknown as AgentEvent;
      for (let i = 0; i < 10; i++) poster.push(progress(i));
      poster.push(log('a'));
      poster.push(log('b'));
      poster.push(log('c'));
      expect(await poster.flush(300)).toBe(false);
      expect(poster.counts.sent).toBe(0);
      expect(poster.counts.dropped).toBe(1);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('the first-boot report installed in the deployed system', () => {
  it('is a simple service after multi-user.target, so waiting for boot to finish cannot wait for itself', () => {
    const unit = firstBootUnit();
    expect(unit).toMatch(/^Type=simple$/m);
    expect(unit).toMatch(/^After=multi-user.target network-online.target$/m);
    expect(unit).toMatch(/^WantedBy=multi-user.target$/m);
  });

  it('writes a script the shell accepts, with the URL quoted', () => {
    const script = firstBootScript(new URL("http://10.0.0.1:8080/report/52-54-00-00-00-01?x='y'"));
    expect(script).toContain(`host='10.0.0.1'`);
    expect(script).toContain(`port='8080'`);
    expect(script).toContain(`path='/report/52-54-00-00-00-01?x=%27y%27'`);
    expect(() => execFileSync('sh', ['-n'], { input: script })).not.toThrow();
    expect(() => firstBootScript(new URL('ftp://x/'))).toThrow(/not http/);
  });

  it('lands in the tree as systemctl enable would leave it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'imagepe-root-'));
    try {
      const written = await installFirstBootReport(root, new URL('http://10.0.0.1/report/m'));
      expect(written).toContain('/etc/systemd/system/multi-user.target.wants/imagepe-first-boot.service');
      expect(await readlink(join(root, 'etc/systemd/system/multi-user.target.wants/imagepe-first-boot.service'))).toBe('/etc/systemd/system/imagepe-first-boot.service');
      expect(await readFile(join(root, 'usr/local/lib/imagepe/first-boot-report'), 'utf8')).toContain("url='http://10.0.0.1/report/m'");
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
