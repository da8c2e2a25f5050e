import { parseUdpReceiverLine, parseUdpSenderLine, SenderTally, type UdpSenderEvent } from './udpcast-log.js';

// Lines captured from Debian 12's udpcast 20120424 (udp-sender and udp-receiver in network
// namespaces on a bridge), split on \n and \r as a reader of their stderr sees them.
const SESSION = [
  'Udp-sender 20120424',
  'Using full duplex mode',
  'Using mcast address 234.77.0.1',
  'UDP sender for mcx/big.bin at 10.77.0.1 on eth0 ',
  'Broadcasting control to 10.77.0.255',
  'New connection from 10.77.0.4  (#0) 00000009',
  'New connection from 10.77.0.3  (#1) 00000009',
  'New connection from 10.77.0.2  (#2) 00000009',
  'Starting transfer: 00000009',
  'bytes=  1 304 576  re-xmits=0000000 (  0.0%) slice=0112 -   0',
  'bytes=  6 359 808  re-xmits=0000000 (  0.0%) slice=0112 -   2',
  '',
  'Timeout notAnswered=[0] notReady=[0] nrAns=2 nrRead=2 nrPart=3 avg=10000',
  'Dropping client #0 because of timeout',
  'Disconnecting #0 (10.77.0.4)',
  'bytes= 29 842 176  re-xmits=0000000 (  0.0%) slice=0112 -   2',
  'bytes= 30 000 000  re-xmits=0000417 ( 12.1%) slice=0112 -   1',
  '',
  'Transfer complete.\u0007',
  'Disconnecting #1 (10.77.0.3)',
  'Disconnecting #2 (10.77.0.2)',
  '',
];

function events(lines: string[]): UdpSenderEvent[] {
  return lines.map(parseUdpSenderLine).filter((e): e is UdpSenderEvent => e !== null);
}

describe('parseUdpSenderLine', () => {
  it('reads every step of a session in which one receiver is dropped', () => {
    expect(events(SESSION)).toEqual([
      { kind: 'version', version: '20120424' },
      { kind: 'message', text: 'Using full duplex mode' },
      { kind: 'data-address', address: '234.77.0.1' },
      { kind: 'listening', file: 'mcx/big.bin', address: '10.77.0.1', interface: 'eth0' },
      { kind: 'control-address', address: '10.77.0.255' },
      { kind: 'joined', receiver: 0, address: '10.77.0.4' },
      { kind: 'joined', receiver: 1, address: '10.77.0.3' },
      { kind: 'joined', receiver: 2, address: '10.77.0.2' },
      { kind: 'started' },
      { kind: 'progress', bytes: 1_304_576, retransmittedBlocks: 0, retransmittedPercent: 0, sliceBlocks: 112 },
      { kind: 'progress', bytes: 6_359_808, retransmittedBlocks: 0, retransmittedPercent: 0, sliceBlocks: 112 },
      { kind: 'waiting-for', receivers: [0] },
      { kind: 'dropped', receiver: 0 },
      { kind: 'disconnected', receiver: 0, address: '10.77.0.4' },
      { kind: 'progress', bytes: 29_842_176, retransmittedBlocks: 0, retransmittedPercent: 0, sliceBlocks: 112 },
      { kind: 'progress', bytes: 30_000_000, retransmittedBlocks: 417, retransmittedPercent: 12.1, sliceBlocks: 112 },
      { kind: 'complete' },
      { kind: 'disconnected', receiver: 1, address: '10.77.0.3' },
      { kind: 'disconnected', receiver: 2, address: '10.77.0.2' },
    ]);
  });

  it('reads statistics of files under a thousand bytes and lists of several receivers', () => {
    expect(parseUdpSenderLine('bytes=     163 072  re-xmits=0000000 (  0.0%) slice=0112 -   0')).toMatchObject({ bytes: 163_072 });
    expect(parseUdpSenderLine('bytes=        512  re-xmits=0000001 (100.0%) slice=0016 -   0')).toMatchObject({ bytes: 512, retransmittedBlocks: 1, retransmittedPercent: 100, sliceBlocks: 16 });
    expect(parseUdpSenderLine('Timeout notAnswered=[0,2,17] notReady=[0,2,17] nrAns=1 nrRead=1 nrPart=4 avg=10000')).toEqual({ kind: 'waiting-for', receivers: [0, 2, 17] });
  });

  it('passes errors through as messages', () => {
    expect(parseUdpSenderLine('bind socket to 10.77.0.1:9001 (Address already in use)')).toEqual({ kind: 'message', text: 'bind socket to 10.77.0.1:9001 (Address already in use)' });
  });
});

describe('SenderTally', () => {
  it('tells finished receivers from dropped ones by the order of the disconnections', () => {
    const tally = new SenderTally();
    for (const e of events(SESSION)) tally.push(e);
    expect(tally.list()).toEqual([
      { receiver: 0, address: '10.77.0.4', outcome: 'dropped' },
      { receiver: 1, address: '10.77.0.3', outcome: 'finished' },
      { receiver: 2, address: '10.77.0.2', outcome: 'finished' },
    ]);
    expect(tally).toMatchObject({ started: true, complete: true, bytes: 30_000_000, retransmittedBlocks: 417, dataAddress: '234.77.0.1' });
    expect(tally.count('finished')).toBe(2);
  });

  it('counts a session whose only receiver was dropped as finished by nobody', () => {
    const tally = new SenderTally();
    const lines = [
      'New connection from 10.77.0.2  (#0) 00000009',
      'Starting transfer: 00000009',
      'Timeout notAnswered=[0] notReady=[0] nrAns=0 nrRead=0 nrPart=1 avg=10000',
      'Dropping client #0 because of timeout',
      'Disconnecting #0 (10.77.0.2)',
      '',
      'Transfer complete.\u0007',
    ];
    for (const e of events(lines)) tally.push(e);
    expect(tally.list()).toEqual([{ receiver: 0, address: '10.77.0.2', outcome: 'dropped' }]);
    expect(tally.count('finished')).toBe(0);
  });

  it('counts a receiver that disconnects before the end as one that left', () => {
    const tally = new SenderTally();
    for (const e of events(['New connection from 10.0.0.5  (#0) 00000009', 'Starting transfer: 00000009', 'Disconnecting #0 (10.0.0.5)'])) tally.push(e);
    expect(tally.list()[0]!.outcome).toBe('left');
  });
});

describe('parseUdpReceiverLine', () => {
  it('reads a reception from start to end', () => {
    const lines = [
      'Udp-receiver 20120424',
      'UDP receiver for (stdout) at 10.77.0.2 on eth0',
      'received message, cap=00000009',
      'Connected as #2 to 10.77.0.1',
      'Listening to multicast on 234.77.0.1',
      'bytes=     163 072  (404.51 Mbps)',
      'bytes=  5 000 000  ( 68.96 Mbps)',
      '',
      'Transfer complete.\u0007',
    ];
    expect(lines.map(parseUdpReceiverLine).filter(Boolean)).toEqual([
      { kind: 'version', version: '20120424' },
      { kind: 'listening', address: '10.77.0.2', interface: 'eth0' },
      { kind: 'connected', receiver: 2, sender: '10.77.0.1' },
      { kind: 'data-address', address: '234.77.0.1' },
      { kind: 'progress', bytes: 163_072, mbps: 404.51 },
      { kind: 'progress', bytes: 5_000_000, mbps: 68.96 },
      { kind: 'complete' },
    ]);
  });

  it('reads the ways a reception fails: the sender silent, a drop, no sender at all', () => {
    expect(parseUdpReceiverLine('Receiver timeout')).toEqual({ kind: 'sender-silent' });
    expect(parseUdpReceiverLine('Dropped by server now=98 last=27')).toEqual({ kind: 'dropped' });
    expect(parseUdpReceiverLine('Missed blocks: 15,16,17,18,19,20')).toBeNull();
    expect(parseUdpReceiverLine('Blocks received: 15/15/112')).toBeNull();
    expect(parseUdpReceiverLine('Receiver error')).toEqual({ kind: 'message', text: 'Receiver error' });
  });
});
