import type { DnsmasqFact } from './dnsmasq-log.js';
import { MachineTable, stateAfterEvent, stateAfterReport, type MachineChange } from './machines.js';

const MAC = '52:54:00:12:34:56';
const pxe = (over: Partial<Extract<DnsmasqFact, { kind: 'dhcp' }>> = {}): DnsmasqFact => ({ kind: 'dhcp', message: 'PXE', mac: MAC, ip: null, arch: 7, vendorClass: 'PXEClient:Arch:00007:UNDI:003016', userClass: null, tags: [], ...over });

function table() {
  let clock = Date.parse('2026-11-30T10:00:00Z');
  const t = new MachineTable(() => new Date((clock += 1000)));
  const changes: MachineChange[] = [];
  t.onChange((c) => changes.push(c));
  return { t, changes };
}

describe('machine states', () => {
  it('moves through a deploy: ready → deploying, steps keep it there with their detail, deployed, then up on a running report', () => {
    let s = stateAfterEvent('booting', null, { type: 'ready', mode: 'deploy' });
    expect(s).toEqual({ state: 'deploying', detail: 'PE ready' });
    s = stateAfterEvent(s.state, s.detail, { type: 'step', step: 'apply', status: 'started', detail: 'image 1 of base.wim' });
    expect(s).toEqual({ state: 'deploying', detail: 'apply started: image 1 of base.wim' });
    s = stateAfterEvent(s.state, s.detail, { type: 'progress', step: 'apply', phase: 'Extracting file data', done: 30, total: 120 });
    expect(s).toEqual({ state: 'deploying', detail: 'apply: Extracting file data 25%' });
    s = stateAfterEvent(s.state, s.detail, { type: 'deployed', hostname: 'pc1', disk: '/dev/sda' });
    expect(s).toEqual({ state: 'deployed', detail: 'pc1 on /dev/sda' });
    expect(stateAfterReport({ hostname: 'pc1', state: 'running' })).toEqual({ state: 'up', detail: 'pc1: system running' });
  });

  it('takes "done" and "started" as the brief calls them, and knows capture and shell modes', () => {
    expect(stateAfterEvent('deploying', null, { type: 'done' }).state).toBe('deployed');
    expect(stateAfterEvent('booting', null, { type: 'started', step: 'partition' })).toEqual({ state: 'deploying', detail: 'partition' });
    expect(stateAfterEvent('booting', null, { type: 'ready', mode: 'capture' }).state).toBe('capturing');
    expect(stateAfterEvent('capturing', null, { type: 'captured', wim: 'images/ref.wim' })).toEqual({ state: 'captured', detail: 'images/ref.wim' });
    expect(stateAfterEvent('booting', null, { type: 'ready', mode: 'shell' }).state).toBe('shell');
  });

  it('fails with the step and message, or the error code; ignores types it does not know', () => {
    expect(stateAfterEvent('deploying', 'x', { type: 'failed', step: 'check', code: 'WIM_CORRUPT', message: 'bad header' })).toEqual({ state: 'failed', detail: 'check: bad header' });
    expect(stateAfterEvent('booting', null, { type: 'error', code: 'NOT_FOUND', message: 'no plan' })).toEqual({ state: 'failed', detail: 'NOT_FOUND: no plan' });
    expect(stateAfterEvent('deploying', 'apply started', { type: 'telemetry-v9' })).toEqual({ state: 'deploying', detail: 'apply started' });
  });

  it('reads the first-boot report: degraded with its failed units, anything else failed with the state shown', () => {
    expect(stateAfterReport({ hostname: 'pc1', state: 'degraded', failedUnits: 'nfs.mount ' })).toEqual({ state: 'degraded', detail: 'pc1: system degraded (failed: nfs.mount)' });
    expect(stateAfterReport({ state: 'maintenance' })).toEqual({ state: 'failed', detail: 'system maintenance' });
  });
});

describe('the machine table', () => {
  it('learns a machine from its boot request: architecture, then the file offered and its address', () => {
    const { t, changes } = table();
    t.applyDnsmasq(pxe());
    t.applyDnsmasq(pxe()); // the same exchange's request to port 4011: no second line
    t.applyDnsmasq({ kind: 'address', mac: MAC, ip: '10.0.0.5' });
    t.applyDnsmasq({ kind: 'boot-file', mac: MAC, file: 'snponly.efi' });
    expect(changes.map((c) => [c.cause, c.previousState, c.machine.state])).toEqual([
      ['dhcp', null, 'booting'],
      ['boot-file', 'booting', 'booting'],
    ]);
    expect(t.get(MAC)).toMatchObject({ ip: '10.0.0.5', arch: 7, archName: 'UEFI x64', firmware: 'uefi', bootFile: 'snponly.efi', state: 'booting' });
  });

  it('ignores other DHCP clients, but keeps their addresses', () => {
    const { t, changes } = table();
    t.applyDnsmasq(pxe({ mac: 'aa:bb:cc:dd:ee:ff', message: 'DHCPACK', ip: '10.0.0.9', vendorClass: 'android-dhcp-13', arch: null }));
    expect(t.list()).toEqual([]);
    expect(changes).toEqual([]);
    expect(t.macOf('10.0.0.9')).toBe('aa:bb:cc:dd:ee:ff');
  });

  it('counts TFTP and HTTP fetches and plan requests by address, holding those from an address not yet known', () => {
    const { t } = table();
    t.applyDnsmasq(pxe({ arch: 0, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' }));
    // The plan requests come from an address no log line has tied to the MAC yet (proxyDHCP, UEFI).
    t.planRequested('10.0.0.5', '52-54-00-12-34-56.yaml', 404);
    t.planRequested('10.0.0.5', 'default.yaml', 200);
    expect(t.get(MAC)?.plan).toBeNull();
    t.events(MAC, '10.0.0.5', [{ type: 'ready', mode: 'deploy' }]);
    const m = t.get(MAC)!;
    expect(m.planRequests.map((p) => [p.file, p.status])).toEqual([
      ['52-54-00-12-34-56.yaml', 404],
      ['default.yaml', 200],
    ]);
    expect(m.plan).toMatchObject({ file: 'default.yaml', status: 200 });
    t.fetched('10.0.0.5', 'vmlinuz', 'http');
    t.applyDnsmasq({ kind: 'tftp-sent', ip: '10.0.0.5', file: 'undionly.kpxe' });
    expect(t.get(MAC)?.fetched.map((f) => `${f.via}:${f.file}`)).toEqual(['http:vmlinuz', 'tftp:undionly.kpxe']);
  });

  it('keeps the plan it was given when later requests miss', () => {
    const { t } = table();
    t.learn(MAC, '10.0.0.5', true);
    t.planRequested('10.0.0.5', 'default.yaml', 200);
    t.planRequested('10.0.0.5', 'other.yaml', 404);
    expect(t.get(MAC)?.plan?.file).toBe('default.yaml');
  });

  it('follows a deploy to up, and starts over when the machine network-boots again', () => {
    const { t, changes } = table();
    t.applyDnsmasq(pxe());
    t.events(MAC, '10.0.0.5', [{ type: 'ready', mode: 'deploy' }, { type: 'step', step: 'apply', status: 'started' }]);
    t.events(MAC, '10.0.0.5', [{ type: 'deployed', hostname: 'pc1', disk: '/dev/vda', time: '2026-11-30T10:05:00Z' }]);
    t.report(MAC, '10.0.0.6', { hostname: 'pc1', state: 'running' });
    expect(t.get(MAC)).toMatchObject({ state: 'up', hostname: 'pc1', ip: '10.0.0.6', lastEvent: { type: 'deployed', time: '2026-11-30T10:05:00Z' } });
    expect(changes.filter((c) => c.previousState !== c.machine.state).map((c) => `${c.previousState}->${c.machine.state}`)).toEqual(['null->booting', 'booting->deploying', 'deploying->deployed', 'deployed->up']);
    // The deployed system's own DHCP request (another vendor class) changes nothing...
    t.applyDnsmasq(pxe({ vendorClass: 'udhcp 1.35.0', message: 'DHCPDISCOVER', arch: null }));
    expect(t.get(MAC)?.state).toBe('up');
    // ...a PXE request is a new network boot.
    t.applyDnsmasq(pxe());
    expect(t.get(MAC)).toMatchObject({ state: 'booting', detail: null, plan: null, fetched: [] });
  });

  it('lists the most recently seen first, as copies', () => {
    const { t } = table();
    t.learn('52:54:00:00:00:01', '10.0.0.1', true);
    t.learn('52:54:00:00:00:02', '10.0.0.2', true);
    const list = t.list();
    expect(list.map((m) => m.mac)).toEqual(['52:54:00:00:00:02', '52:54:00:00:00:01']);
    list[0]!.state = 'failed';
    expect(t.get('52:54:00:00:00:02')?.state).toBe('booting');
  });

  it('starts from the table a previous run left', () => {
    const { t } = table();
    t.report(MAC, '10.0.0.5', { state: 'running' });
    const again = new MachineTable(() => new Date(), t.list());
    expect(again.get(MAC)?.state).toBe('up');
    expect(again.macOf('10.0.0.5')).toBe(MAC);
  });
});
