import { DEFAULT_RETRIES_UNTIL_DROP, udpSenderArgs, type MulticastSessionOptions } from './multicast.js';

const base: MulticastSessionOptions = { file: '/srv/images/debian.wim', interface: 'br0', portbase: 9000, minReceivers: 3, maxWaitSeconds: 60 };

describe('udpSenderArgs', () => {
  it('runs udp-sender unattended, with a bounded drop of lost receivers', () => {
    expect(udpSenderArgs(base)).toEqual([
      '--file', '/srv/images/debian.wim', '--interface', 'br0', '--portbase', '9000',
      '--min-receivers', '3', '--max-wait', '60', '--retries-until-drop', String(DEFAULT_RETRIES_UNTIL_DROP), '--nokbd',
    ]);
  });

  it('adds the bit rate limit and the start timeout only when they are given', () => {
    const args = udpSenderArgs({ ...base, maxBitrate: '600m', startTimeoutSeconds: 300, retriesUntilDrop: 50 });
    expect(args.slice(-6)).toEqual(['50', '--nokbd', '--max-bitrate', '600m', '--start-timeout', '300']);
  });

  it.each([
    ['an odd portbase', { portbase: 9001 }, /portbase must be an even port/],
    ['a privileged portbase', { portbase: 80 }, /portbase/],
    ['no receivers to wait for', { minReceivers: 0 }, /minReceivers/],
    ['a negative wait', { maxWaitSeconds: -1 }, /maxWaitSeconds/],
    ['a drop count that drops receivers in milliseconds', { retriesUntilDrop: 5 }, /retriesUntilDrop/],
    ['a bit rate udpcast cannot read', { maxBitrate: '1 Gbit' }, /not a bit rate/],
    ['an interface name with a space', { interface: 'eth0 up' }, /interface name/],
  ] as const)('refuses %s', (_what, change, message) => {
    expect(() => udpSenderArgs({ ...base, ...change })).toThrow(message);
    try {
      udpSenderArgs({ ...base, ...change });
    } catch (e) {
      expect(e).toMatchObject({ code: 'INVALID_INPUT', hint: expect.any(String) });
    }
  });
});
