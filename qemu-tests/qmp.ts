import { connect, type Socket } from 'node:net';
import { ImagepeError } from '../core/index.js';

/**
 * A minimal QMP client: QEMU's JSON machine protocol, used for power control. Replies come in
 * order, so each command simply waits for the next return or error.
 */
export class QmpClient {
  private buffer = '';
  private waiters: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.failAll(new ImagepeError('NOT_FOUND', 'the QMP connection closed')));
    socket.on('error', (e) => this.failAll(e));
  }

  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const client = new QmpClient(socket);
        await client.next(); // greeting
        await client.execute('qmp_capabilities');
        return client;
      } catch (e) {
        if (Date.now() > deadline) throw new ImagepeError('COMMAND_TIMEOUT', `QMP socket ${path} did not answer within ${timeoutMs} ms: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('event' in msg) continue; // asynchronous events are not replies
      const w = this.waiters.shift();
      if (!w) continue;
      if ('error' in msg) w.reject(new ImagepeError('COMMAND_FAILED', `QMP: ${JSON.stringify(msg.error)}`));
      else w.resolve(msg.return ?? msg.QMP);
    }
  }

  private failAll(e: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(e);
  }

  private next(): Promise<unknown> {
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = this.next();
    this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    return reply;
  }

  close(): void {
    this.socket.destroy();
  }
}
