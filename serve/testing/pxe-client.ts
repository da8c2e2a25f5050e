import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';

/**
 * Test code: a network boot client as a firmware's PXE ROM, iPXE or UEFI HTTP boot behaves on
 * the wire, for the namespace tests of `imagepe serve` (no real PXE ROM can run here: QEMU's are
 * iPXE). It broadcasts a DHCPDISCOVER with the client's vendor class and architecture (options
 * 60, 93, 94, 97; 77 and 175 as iPXE), collects the offers, and when the proxyDHCP offer names no
 * file it does what PXE 2.1 and UEFI firmware do: takes the address the site's DHCP server
 * offered and asks the boot server on port 4011 (with the first menu item, for a BIOS menu).
 *
 * Run as root inside the client's network namespace:
 *   node dist/serve/testing/pxe-client.js --iface eth0 --arch 0 [--ipxe] [--vendor V] [--wait MS]
 * Prints one JSON object: { offers, lease, boot } (see PxeRun).
 */

export interface DhcpReply {
  /** "10.0.0.1:67" or ":4011". */
  from: string;
  /** DHCP message type: 2 OFFER, 5 ACK, 6 NAK. */
  type: number | null;
  yiaddr: string;
  siaddr: string;
  sname: string;
  file: string;
  /** Option 54. */
  server: string | null;
  /** Option 60. */
  vendorClass: string | null;
  /** Option 1. */
  netmask: string | null;
  /** Option 43, hex. */
  vendorOptions: string | null;
}

export interface PxeRun {
  offers: DhcpReply[];
  /** The site server's ACK, when the client took its address for the boot server step. */
  lease: DhcpReply | null;
  /** The boot server's (port 4011) ACK. */
  boot: DhcpReply | null;
}

interface ClientOptions {
  iface: string;
  arch: number;
  vendor: string;
  ipxe: boolean;
  waitMs: number;
}

function parseArgs(argv: string[]): ClientOptions {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const arch = Number(get('arch') ?? 0);
  return {
    iface: get('iface') ?? 'eth0',
    arch,
    vendor: get('vendor') ?? `PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:003016`,
    ipxe: argv.includes('--ipxe'),
    waitMs: Number(get('wait') ?? 5_000),
  };
}

const ip4 = (b: Buffer) => [...b].join('.');
const cstr = (b: Buffer) => b.subarray(0, b.indexOf(0) < 0 ? b.length : b.indexOf(0)).toString('latin1');

function option(code: number, data: Buffer | string | number[]): Buffer {
  const b = Buffer.isBuffer(data) ? data : typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data);
  return Buffer.concat([Buffer.from([code, b.length]), b]);
}

function parseOptions(msg: Buffer): Map<number, Buffer> {
  const opts = new Map<number, Buffer>();
  for (let i = 240; i < msg.length && msg[i] !== 255; ) {
    if (msg[i] === 0) {
      i++;
      continue;
    }
    const len = msg[i + 1]!;
    opts.set(msg[i]!, msg.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return opts;
}

function parseReply(msg: Buffer, from: string): DhcpReply {
  const o = parseOptions(msg);
  return {
    from,
    type: o.get(53)?.[0] ?? null,
    yiaddr: ip4(msg.subarray(16, 20)),
    siaddr: ip4(msg.subarray(20, 24)),
    sname: cstr(msg.subarray(44, 108)),
    file: cstr(msg.subarray(108, 236)),
    server: o.has(54) ? ip4(o.get(54)!) : null,
    vendorClass: o.get(60)?.toString('latin1') ?? null,
    netmask: o.has(1) ? ip4(o.get(1)!) : null,
    vendorOptions: o.get(43)?.toString('hex') ?? null,
  };
}

/** The first boot item type in a PXE menu (option 43, suboption 9: type(2) length(1) text). */
function firstMenuItem(vendorOptions: string | null): Buffer | undefined {
  if (!vendorOptions) return undefined;
  const b = Buffer.from(vendorOptions, 'hex');
  for (let i = 0; i < b.length && b[i] !== 255; i += 2 + b[i + 1]!) if (b[i] === 9) return b.subarray(i + 2, i + 4);
  return undefined;
}

async function main(o: ClientOptions): Promise<PxeRun> {
  const mac = Buffer.from(readFileSync(`/sys/class/net/${o.iface}/address`, 'utf8').trim().split(':').map((h) => parseInt(h, 16)));
  const xid = Math.floor(Math.random() * 2 ** 32);
  // Without an address there is no route for 255.255.255.255; a PXE ROM sends from 0.0.0.0 all the same.
  execFileSync('ip', ['route', 'replace', '255.255.255.255/32', 'dev', o.iface]);

  const packet = (type: number, extra: Buffer[] = [], ciaddr?: string) => {
    const h = Buffer.alloc(236);
    h[0] = 1; // BOOTREQUEST
    h[1] = 1; // Ethernet
    h[2] = 6;
    h.writeUInt32BE(xid, 4);
    if (!ciaddr) h.writeUInt16BE(0x8000, 10); // broadcast replies: the client has no address yet
    if (ciaddr) Buffer.from(ciaddr.split('.').map(Number)).copy(h, 12);
    mac.copy(h, 28);
    const arch = Buffer.alloc(2);
    arch.writeUInt16BE(o.arch);
    const opts = [
      option(53, [type]),
      option(60, o.vendor),
      option(93, arch),
      option(94, [1, 2, 1]),
      option(97, Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 0x42)])),
      option(55, [1, 3, 43, 60, 66, 67, 128, 129, 130, 175]),
      ...(o.ipxe ? [option(77, 'iPXE'), option(175, [0xb1, 1, 1, 0x13, 1, 1])] : []),
      ...extra,
    ];
    return Buffer.concat([h, Buffer.from([99, 130, 83, 99]), ...opts, Buffer.from([255])]);
  };

  const socket: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  const replies: DhcpReply[] = [];
  let wake: (() => void) | undefined;
  socket.on('message', (msg, rinfo) => {
    if (msg.length < 240 || msg[0] !== 2 || msg.readUInt32BE(4) !== xid) return;
    replies.push(parseReply(msg, `${rinfo.address}:${rinfo.port}`));
    wake?.();
  });
  await new Promise<void>((resolve) => socket.bind(68, '0.0.0.0', resolve));
  socket.setBroadcast(true);
  const send = (buf: Buffer, host: string, port: number) => new Promise<void>((resolve, reject) => socket.send(buf, port, host, (e) => (e ? reject(e) : resolve())));
  /** Waits until `done` holds for the replies so far, or `ms` passes. */
  const until = async (done: (r: DhcpReply[]) => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!done(replies) && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };

  try {
    await send(packet(1), '255.255.255.255', 67);
    // A proxy offer and an address offer, or an address offer with boot information (a DHCP
    // server that boots clients itself), or whatever came in the time given.
    await until((r) => (r.some((x) => x.yiaddr === '0.0.0.0') && r.some((x) => x.yiaddr !== '0.0.0.0')) || r.some((x) => x.yiaddr !== '0.0.0.0' && x.file !== ''), o.waitMs);
    const offers = replies.splice(0);
    const site = offers.find((x) => x.yiaddr !== '0.0.0.0');
    const proxy = offers.find((x) => x.yiaddr === '0.0.0.0');
    if (!site || !proxy || proxy.file !== '') return { offers, lease: null, boot: null };

    await send(packet(3, [option(50, site.yiaddr.split('.').map(Number)), option(54, site.server!.split('.').map(Number))]), '255.255.255.255', 67);
    await until((r) => r.some((x) => x.type === 5 || x.type === 6), o.waitMs);
    const lease = replies.splice(0).find((x) => x.type === 5) ?? null;
    if (!lease) return { offers, lease: null, boot: null };
    const prefix = (lease.netmask ?? '255.255.255.0').split('.').reduce((n, part) => n + Number(part).toString(2).replace(/0/g, '').length, 0);
    execFileSync('ip', ['addr', 'replace', `${lease.yiaddr}/${prefix}`, 'dev', o.iface]);
    execFileSync('ip', ['route', 'replace', '255.255.255.255/32', 'dev', o.iface]);

    // BIOS: the menu's first item (option 43 suboption 71: type, layer 0). UEFI: the redirect to siaddr:4011 with no item.
    const item = firstMenuItem(proxy.vendorOptions);
    const extra = item ? [option(43, Buffer.concat([Buffer.from([71, 4]), item, Buffer.from([0, 0, 255])]))] : [];
    const bootServer = proxy.siaddr !== '0.0.0.0' ? proxy.siaddr : proxy.server!;
    await send(packet(3, extra, lease.yiaddr), bootServer, 4011);
    await until((r) => r.some((x) => x.from.endsWith(':4011')), o.waitMs);
    return { offers, lease, boot: replies.find((x) => x.from.endsWith(':4011')) ?? null };
  } finally {
    socket.close();
  }
}

main(parseArgs(process.argv.slice(2))).then(
  (run) => process.stdout.write(`${JSON.stringify(run)}\n`),
  (e: Error) => {
    process.stderr.write(`pxe-client: ${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  },
);
