import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { findMulticastOffer, multicastOfferUrl, parseMulticastOffer } from './multicast-offer.js';

describe('the multicast session a server offers for an image', () => {
  it('is asked for under /api/multicast with the image path', () => {
    expect(multicastOfferUrl(new URL('http://10.0.0.1:8080/images/base%20x.wim')).href).toBe('http://10.0.0.1:8080/api/multicast/images/base%20x.wim');
  });

  it('takes only a complete, sane description', () => {
    const good = { portbase: 9000, server: '10.0.0.1', maxWaitSeconds: 60, minReceivers: 3 };
    expect(parseMulticastOffer(good)).toEqual(good);
    expect(parseMulticastOffer({ ...good, portbase: 80 })).toBeUndefined();
    expect(parseMulticastOffer({ ...good, server: 'example.org' })).toBeUndefined();
    expect(parseMulticastOffer({ ...good, minReceivers: 0 })).toBeUndefined();
    expect(parseMulticastOffer('9000')).toBeUndefined();
  });

  it('is none when the server answers 404, as a plain static server does', async () => {
    let status = 404;
    const server = createServer((_req, res) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ portbase: 9000, server: '127.0.0.1', maxWaitSeconds: 5, minReceivers: 2 })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/images/a.wim`);
    try {
      await expect(findMulticastOffer(url)).resolves.toBeUndefined();
      status = 200;
      await expect(findMulticastOffer(url)).resolves.toEqual({ portbase: 9000, server: '127.0.0.1', maxWaitSeconds: 5, minReceivers: 2 });
      status = 500;
      await expect(findMulticastOffer(url)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
