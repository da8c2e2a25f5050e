import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { run } from '../../core/index.js';

// Image servers on 127.0.0.1 for the http(s) faults: a plain http server, and an https server
// whose certificate is self-signed (made with openssl here), which a deploy must refuse.

export interface ImageServers {
  /** http://127.0.0.1:PORT, serving the share folder. */
  http: string;
  /** https://127.0.0.1:PORT, the same files behind a self-signed certificate. */
  https: string;
  /** The self-signed certificate (PEM), so a test can show the server works when it is trusted. */
  certificate: string;
  close(): Promise<void>;
}

/** A self-signed certificate for 127.0.0.1, made with openssl req -x509. */
export async function selfSignedCertificate(dir: string): Promise<{ key: string; cert: string }> {
  const key = join(dir, 'server.key');
  const cert = join(dir, 'server.crt');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { what: 'making a self-signed certificate' });
  return { key: await readFile(key, 'utf8'), cert: await readFile(cert, 'utf8') };
}

/**
 * Serves files of `root`. A path under /short/ sends the Content-Length of the whole file but
 * only half of it, then drops the connection: a download broken off midway.
 */
function handler(root: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      const short = url.startsWith('/short/');
      const rel = normalize(short ? url.slice('/short'.length) : url);
      if (rel.includes('..')) return void res.writeHead(400).end();
      const file = join(root, rel);
      const s = await stat(file).catch(() => undefined);
      if (!s?.isFile()) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': s.size, 'content-type': 'application/octet-stream' });
      if (!short) return void createReadStream(file).pipe(res);
      const half = (await readFile(file)).subarray(0, Math.floor(s.size / 2));
      res.write(half, () => res.destroy());
    })();
  };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

export async function startImageServers(root: string, certDir: string): Promise<ImageServers> {
  const { key, cert } = await selfSignedCertificate(certDir);
  const plain = createHttpServer(handler(root));
  const tls = createHttpsServer({ key, cert }, handler(root));
  const httpPort = await listen(plain);
  const httpsPort = await listen(tls);
  const close = (s: Server) =>
    new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => resolve());
    });
  return {
    http: `http://127.0.0.1:${httpPort}`,
    https: `https://127.0.0.1:${httpsPort}`,
    certificate: cert,
    close: async () => {
      await Promise.all([close(plain), close(tls)]);
    },
  };
}
