import { inSubnet, ipv4ToNumber, netmaskToPrefix, numberToIpv4, prefixToNetmask, subnetOf } from './ipv4.js';

describe('IPv4', () => {
  it('converts addresses and masks', () => {
    expect(ipv4ToNumber('10.0.0.1')).toBe(167772161);
    expect(numberToIpv4(167772161)).toBe('10.0.0.1');
    expect(ipv4ToNumber('255.255.255.255')).toBe(0xffffffff);
    expect(ipv4ToNumber('256.0.0.1')).toBeUndefined();
    expect(ipv4ToNumber('10.0.0')).toBeUndefined();
    expect(prefixToNetmask(24)).toBe('255.255.255.0');
    expect(prefixToNetmask(0)).toBe('0.0.0.0');
    expect(prefixToNetmask(32)).toBe('255.255.255.255');
    expect(netmaskToPrefix('255.255.252.0')).toBe(22);
    expect(netmaskToPrefix('255.255.255.255')).toBe(32);
    expect(netmaskToPrefix('255.0.255.0')).toBeUndefined();
  });

  it('finds the subnet of an interface address', () => {
    expect(subnetOf('192.168.7.77', 22)).toEqual({ network: '192.168.4.0', netmask: '255.255.252.0', prefixLength: 22 });
    const s = subnetOf('10.77.0.1', 24);
    expect(inSubnet('10.77.0.200', s)).toBe(true);
    expect(inSubnet('10.77.1.1', s)).toBe(false);
  });
});
