import { describeReceiveFailure, interfaceToward, receiveMulticast, udpReceiverArgs } from './multicast.js';

// /proc/net/route as the kernel writes it (addresses in host byte order, little-endian).
const HEAD = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';
const PE_TABLE = [
  HEAD,
  'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0', // default via 192.0.2.1
  'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0', // 192.0.2.0/24
  'eth1\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0', // 10.77.0.0/24
  'eth2\t00004D0A\t00000000\t0001\t0\t0\t100\t0000FFFF\t0\t0\t0', // 10.77.0.0/16, metric 100
].join('\n');

describe('interfaceToward', () => {
  it('chooses the interface of the most specific route to the server', () => {
    expect(interfaceToward(PE_TABLE, '10.77.0.1')).toBe('eth1');
    expect(interfaceToward(PE_TABLE, '10.77.9.1')).toBe('eth2');
    expect(interfaceToward(PE_TABLE, '192.0.2.10')).toBe('eth0');
  });

  it('follows the default route to a server on no local subnet', () => {
    expect(interfaceToward(PE_TABLE, '198.51.100.7')).toBe('eth0');
  });

  it('chooses the interface of the default route when no server is named', () => {
    expect(interfaceToward(PE_TABLE)).toBe('eth0');
  });

  it('takes the only interface with a route when there is no default route', () => {
    expect(interfaceToward(`${HEAD}\neth0\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`)).toBe('eth0');
  });

  it('says so when nothing routes to the server, or there is nothing to choose', () => {
    const local = `${HEAD}\neth0\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`;
    expect(() => interfaceToward(local, '192.0.2.1')).toThrow(expect.objectContaining({ code: 'NOT_FOUND', message: expect.stringContaining('no route leads to the server 192.0.2.1') }));
    expect(() => interfaceToward(`${HEAD}\n`)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});

describe('udpReceiverArgs', () => {
  it('joins the session on the portbase, unattended, with both timeouts and a receive buffer that keeps up', () => {
    expect(udpReceiverArgs({ interface: 'eth0', portbase: 9000, startTimeoutSeconds: 600, receiveTimeoutSeconds: 60 })).toEqual([
      '--interface', 'eth0', '--portbase', '9000', '--nokbd', '--start-timeout', '600', '--receive-timeout', '60', '--rcvbuf', '4194304',
    ]);
  });
});

describe('receiveMulticast', () => {
  it('refuses options udp-receiver would misread before it starts anything', () => {
    const ok = { interface: 'eth0', portbase: 9000, startTimeoutSeconds: 10, receiveTimeoutSeconds: 10 };
    expect(() => receiveMulticast({ ...ok, portbase: 9001 })).toThrow(/even port number/);
    expect(() => receiveMulticast({ ...ok, startTimeoutSeconds: 0.5 })).toThrow(/startTimeoutSeconds/);
    expect(() => receiveMulticast({ ...ok, interface: undefined, server: 'imagepe.example' })).toThrow(/not an IPv4 address/);
    expect(() => receiveMulticast({ ...ok, interface: undefined, netns: 'pe1' })).toThrow(/needs the interface named/);
  });
});

describe('describeReceiveFailure', () => {
  const options = { interface: 'eth0', portbase: 9000, startTimeoutSeconds: 30, receiveTimeoutSeconds: 20 };
  const facts = { exitCode: 1, signal: undefined, connected: true, dropped: false, senderSilent: false, bytes: 7_008_256 };

  it('says the sender went silent, and for how long, after a receive timeout', () => {
    const f = describeReceiveFailure({ ...facts, senderSilent: true }, options);
    expect(f).toMatchObject({ reason: 'sender-silent', message: 'the sender went silent for 20 s after 6.68 MiB' });
    expect(f.hint).toMatch(/deploy over HTTP/);
  });

  it('says the server dropped the machine, and that the others went on', () => {
    const f = describeReceiveFailure({ ...facts, dropped: true }, options);
    expect(f.reason).toBe('dropped');
    expect(f.message).toMatch(/dropped this machine/);
    expect(f.hint).toMatch(/joins the next session/);
  });

  it('names the ports to open when no sender answered', () => {
    const f = describeReceiveFailure({ ...facts, exitCode: 255, connected: false, bytes: 0 }, options);
    expect(f).toMatchObject({ reason: 'no-sender', message: 'no multicast session answered within 30 s' });
    expect(f.hint).toMatch(/UDP ports 9000 and 9001/);
  });

  it('blames a missing broadcast address, which looks like no sender to udp-receiver', () => {
    const f = describeReceiveFailure({ ...facts, exitCode: 255, connected: false, bytes: 0, address: { ipv4: true, broadcast: false } }, options);
    expect(f.reason).toBe('no-broadcast');
    expect(f.hint).toMatch(/brd \+ dev eth0/);
  });

  it('reports a receiver killed by a signal as killed, whatever it printed', () => {
    expect(describeReceiveFailure({ ...facts, exitCode: undefined, signal: 'SIGKILL', dropped: true }, options)).toMatchObject({ reason: 'killed', message: 'udp-receiver was killed by SIGKILL after 6.68 MiB' });
  });
});
