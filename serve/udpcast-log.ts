/**
 * Reads what udpcast's udp-sender and udp-receiver print on stderr into events. Both print a
 * line per step of the session and a statistics line every half second that ends in \r (a
 * terminal redraws it in place), so split the output on \n and on \r before parsing; the last
 * line may also carry a BEL (\u0007) after "Transfer complete.". Formats are those of Debian 12's
 * udpcast 20120424, as captured in serve/udpcast-log.test.ts. Pure: no I/O.
 */

/** One line of udp-sender's output, read. */
export type UdpSenderEvent =
  | { kind: 'version'; version: string }
  /** "UDP sender for FILE at ADDRESS on INTERFACE": its sockets are bound, it waits for receivers. */
  | { kind: 'listening'; file: string; address: string; interface: string }
  /** The multicast group the data goes to (derived from the sender's address unless given). */
  | { kind: 'data-address'; address: string }
  /** Where receivers' connection requests are answered: the interface's broadcast address. */
  | { kind: 'control-address'; address: string }
  /** A receiver joined the session; `receiver` is its slot number, which the other lines name it by. */
  | { kind: 'joined'; receiver: number; address: string }
  /** Enough receivers joined, or max-wait passed: the transfer begins. */
  | { kind: 'started' }
  /** Statistics: `bytes` of the file every receiver has acknowledged; retransmitted blocks (of up to 1456 bytes) so far. */
  | { kind: 'progress'; bytes: number; retransmittedBlocks: number; retransmittedPercent: number; sliceBlocks: number }
  /** The sender waits for these receivers to acknowledge a slice (printed every sixth unanswered request). */
  | { kind: 'waiting-for'; receivers: number[] }
  /** The receiver did not answer within --retries-until-drop requests and was dropped from the session. */
  | { kind: 'dropped'; receiver: number }
  /** The receiver left the session: at the end of the transfer, after a drop, or on its own. */
  | { kind: 'disconnected'; receiver: number; address: string }
  /** The transfer ended: every receiver still in the session has the whole file (or none is left). */
  | { kind: 'complete' }
  /** Any other line: udp-sender's errors ("bind socket to ... (Address already in use)"). */
  | { kind: 'message'; text: string };

/** One line of udp-receiver's output, read. */
export type UdpReceiverEvent =
  | { kind: 'version'; version: string }
  /** "UDP receiver for (stdout) at ADDRESS on INTERFACE": it asks for a sender by broadcast. */
  | { kind: 'listening'; address: string; interface: string }
  /** A sender answered and took this machine as receiver number `receiver`. */
  | { kind: 'connected'; receiver: number; sender: string }
  | { kind: 'data-address'; address: string }
  /** Statistics: bytes received so far and the average rate since the transfer began, in Mbit/s. */
  | { kind: 'progress'; bytes: number; mbps: number }
  /**
   * "Transfer complete." The receiver prints it after a receive timeout or a drop too, so it is
   * no proof of success: the exit status is.
   */
  | { kind: 'complete' }
  /** No packet from the sender for --receive-timeout seconds during the transfer (exit status 1). */
  | { kind: 'sender-silent' }
  /** The sender dropped this receiver from the session for answering too slowly (exit status 1). */
  | { kind: 'dropped' }
  /** Any other line; "Receiver error" (exit status 255) is what a start timeout prints. */
  | { kind: 'message'; text: string };

const IP = '(\\d{1,3}(?:\\.\\d{1,3}){3})';
// Thousands are grouped with spaces: "bytes=  5 000 000".
const COUNT = '(\\d{1,3}(?: \\d{3})*)';
const SENDER_PATTERNS: ReadonlyArray<[RegExp, (m: RegExpExecArray) => UdpSenderEvent]> = [
  [/^Udp-sender (\S+)$/, (m) => ({ kind: 'version', version: m[1]! })],
  [new RegExp(`^UDP sender for (.*) at ${IP} on (\\S+)$`), (m) => ({ kind: 'listening', file: m[1]!, address: m[2]!, interface: m[3]! })],
  [new RegExp(`^Using mcast address ${IP}$`), (m) => ({ kind: 'data-address', address: m[1]! })],
  [new RegExp(`^Broadcasting control to ${IP}$`), (m) => ({ kind: 'control-address', address: m[1]! })],
  [new RegExp(`^New connection from ${IP} +\\(#(\\d+)\\)`), (m) => ({ kind: 'joined', receiver: Number(m[2]), address: m[1]! })],
  [/^Starting transfer\b/, () => ({ kind: 'started' })],
  [
    new RegExp(`^bytes= *${COUNT} +re-xmits=(\\d+) +\\( *([\\d.]+)%\\) +slice=(\\d+)`),
    (m) => ({ kind: 'progress', bytes: count(m[1]!), retransmittedBlocks: Number(m[2]), retransmittedPercent: Number(m[3]), sliceBlocks: Number(m[4]) }),
  ],
  [/^Timeout notAnswered=\[([\d,]*)\]/, (m) => ({ kind: 'waiting-for', receivers: numbers(m[1]!) })],
  [/^Dropping client #(\d+)/, (m) => ({ kind: 'dropped', receiver: Number(m[1]) })],
  [new RegExp(`^Disconnecting #(\\d+) \\(${IP}\\)$`), (m) => ({ kind: 'disconnected', receiver: Number(m[1]), address: m[2]! })],
  [/^Transfer complete\.$/, () => ({ kind: 'complete' })],
];

const RECEIVER_PATTERNS: ReadonlyArray<[RegExp, (m: RegExpExecArray) => UdpReceiverEvent | null]> = [
  [/^Udp-receiver (\S+)$/, (m) => ({ kind: 'version', version: m[1]! })],
  [new RegExp(`^UDP receiver for .* at ${IP} on (\\S+)$`), (m) => ({ kind: 'listening', address: m[1]!, interface: m[2]! })],
  [new RegExp(`^Connected as #(\\d+) to ${IP}$`), (m) => ({ kind: 'connected', receiver: Number(m[1]), sender: m[2]! })],
  [new RegExp(`^Listening to multicast on ${IP}$`), (m) => ({ kind: 'data-address', address: m[1]! })],
  [new RegExp(`^bytes= *${COUNT} +\\( *([\\d.]+) Mbps\\)`), (m) => ({ kind: 'progress', bytes: count(m[1]!), mbps: Number(m[2]) })],
  [/^Transfer complete\.$/, () => ({ kind: 'complete' })],
  [/^Receiver timeout$/, () => ({ kind: 'sender-silent' })],
  [/^Dropped by server\b/, () => ({ kind: 'dropped' })],
  // Protocol chatter and the detail after a drop: not events of their own.
  [/^(?:received message, cap=|Missed blocks:|Blocks received:)/, () => null],
];

/** The event one line of udp-sender's stderr stands for; null for an empty line. */
export function parseUdpSenderLine(line: string): UdpSenderEvent | null {
  return parseLine(line, SENDER_PATTERNS, (text) => ({ kind: 'message', text }));
}

/** The event one line of udp-receiver's stderr stands for; null for an empty line or protocol chatter. */
export function parseUdpReceiverLine(line: string): UdpReceiverEvent | null {
  return parseLine(line, RECEIVER_PATTERNS, (text) => ({ kind: 'message', text }));
}

function parseLine<E>(line: string, patterns: ReadonlyArray<[RegExp, (m: RegExpExecArray) => E | null]>, other: (text: string) => E): E | null {
  // The BEL after "Transfer complete." and the padding of statistics lines are for terminals.
  const text = line.replace(/[\u0000-\u001f]/g, '').trim();
  if (text.length === 0) return null;
  for (const [pattern, make] of patterns) {
    const m = pattern.exec(text);
    if (m) return make(m);
  }
  return other(text);
}

function count(grouped: string): number {
  return Number(grouped.replace(/ /g, ''));
}

function numbers(list: string): number[] {
  return list
    .split(',')
    .filter((s) => s.length > 0)
    .map(Number);
}

/** What became of one receiver of a session. */
export type ReceiverOutcome = 'joined' | 'finished' | 'dropped' | 'left';

export interface SessionReceiver {
  /** udp-sender's slot number for it ("#0"). */
  receiver: number;
  address: string;
  /**
   * joined: in the session (it has not ended yet); finished: it had the whole file when the
   * transfer ended; dropped: it stopped answering and was dropped; left: it disconnected on its
   * own before the end.
   */
  outcome: ReceiverOutcome;
}

/**
 * Folds udp-sender's events into the state of its session: who joined, who finished or was
 * dropped, how far the transfer is. Feed it every event in order.
 */
export class SenderTally {
  readonly receivers = new Map<number, SessionReceiver>();
  started = false;
  complete = false;
  /** Bytes of the file acknowledged by every receiver so far (udp-sender's statistics). */
  bytes = 0;
  retransmittedBlocks = 0;
  dataAddress: string | undefined;
  /** The last lines that were not statistics, for error messages. */
  readonly messages: string[] = [];
  private readonly droppedSlots = new Set<number>();

  push(event: UdpSenderEvent): void {
    switch (event.kind) {
      case 'joined':
        this.receivers.set(event.receiver, { receiver: event.receiver, address: event.address, outcome: 'joined' });
        break;
      case 'started':
        this.started = true;
        break;
      case 'progress':
        this.bytes = event.bytes;
        this.retransmittedBlocks = event.retransmittedBlocks;
        break;
      case 'dropped': {
        this.droppedSlots.add(event.receiver);
        const r = this.receivers.get(event.receiver);
        if (r) r.outcome = 'dropped';
        break;
      }
      case 'disconnected': {
        const r = this.receivers.get(event.receiver) ?? { receiver: event.receiver, address: event.address, outcome: 'joined' as ReceiverOutcome };
        this.receivers.set(event.receiver, r);
        // Every receiver is disconnected at the end, the dropped ones before: the order tells them apart.
        if (!this.droppedSlots.has(event.receiver)) r.outcome = this.complete ? 'finished' : 'left';
        break;
      }
      case 'complete':
        this.complete = true;
        break;
      case 'data-address':
        this.dataAddress = event.address;
        break;
      case 'message':
        this.messages.push(event.text);
        if (this.messages.length > 15) this.messages.shift();
        break;
      default:
        break;
    }
  }

  /** The receivers, by slot number. */
  list(): SessionReceiver[] {
    return [...this.receivers.values()].sort((a, b) => a.receiver - b.receiver).map((r) => ({ ...r }));
  }

  count(outcome: ReceiverOutcome): number {
    let n = 0;
    for (const r of this.receivers.values()) if (r.outcome === outcome) n++;
    return n;
  }
}
