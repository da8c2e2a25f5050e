import { parseDhcpProbeXml } from './dhcp-probe.js';

// nmap 7.93 -oX - with broadcast-dhcp-discover, one dnsmasq answering (captured in a namespace).
const ONE = `<prescript><script id="broadcast-dhcp-discover" output="..."><table key="Response 1 of 1">
<elem key="Interface">br0</elem>
<elem key="IP Offered">10.77.0.141</elem>
<elem key="DHCP Message Type">DHCPOFFER</elem>
<elem key="Server Identifier">10.77.0.2</elem>
<elem key="IP Address Lease Time">2m00s</elem>
<elem key="Subnet Mask">255.255.255.0</elem>
<elem key="Router">10.77.0.2</elem>
</table>
</script></prescript>WARNING: No targets were specified, so 0 hosts scanned.
<runstats><finished time="1796017078" elapsed="4.27" exit="success"/><hosts up="0" down="0" total="0"/></runstats>`;

describe('the DHCP probe', () => {
  it('reads the servers that offered an address', () => {
    expect(parseDhcpProbeXml(ONE)).toEqual([{ server: '10.77.0.2', offered: '10.77.0.141' }]);
  });

  it('reads several answers, with or without the colon nmap documents after the count', () => {
    const two = ONE.replace('Response 1 of 1', 'Response 1 of 2:').replace('</table>', '</table><table key="Response 2 of 2"><elem key="DHCP Message Type">DHCPOFFER</elem><elem key="Server Identifier">10.77.0.9</elem></table>');
    expect(parseDhcpProbeXml(two)).toEqual([
      { server: '10.77.0.2', offered: '10.77.0.141' },
      { server: '10.77.0.9', offered: null },
    ]);
  });

  it('finds none when nobody answered', () => {
    expect(parseDhcpProbeXml('<nmaprun><prescript></prescript><runstats/></nmaprun>')).toEqual([]);
  });
});
