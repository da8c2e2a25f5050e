import { hasRoute } from './network.js';

const HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';

describe('hasRoute', () => {
  it('is false before DHCP has configured any NIC', () => {
    expect(hasRoute(`${HEADER}\n`)).toBe(false);
    expect(hasRoute('')).toBe(false);
  });

  it('is true once a NIC has an address, with or without a default route', () => {
    expect(hasRoute(`${HEADER}\neth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`)).toBe(true);
    expect(hasRoute(`${HEADER}\neth0\t00000000\t0202000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n`)).toBe(true);
  });
});
