/**
 * A notification receiver on loopback for tests: verifies every signature with the
 * `standardwebhooks` package (what a real receiver would use), records each delivery, and fails
 * on demand (5xx, connection resets, answers slower than the sender's timeout, 410, Retry-After).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';

export const TEST_SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;

export type Answer = 'ok' | '500' | 'reset' | 'hang' | '410' | { status: number; retryAfter?: string };

export interface Delivery {
  id: string;
  timestamp: string;
  body: string;
  payload: { type: string; version: number; id: string; timestamp: string; data: Record<string, unknown> };
  answer: Answer;
  at: number;
}

export class Receiver {
  readonly deliveries: Delivery[] = [];
  /** Requests whose signature did not verify (each also answered 401). */
  readonly badSignatures: string[] = [];
  requests = 0;
  /** Requests being answered right now, and the most there ever were at once. */
  inFlight = 0;
  maxInFlight = 0;
  /** Event ids that arrived while a request for the same id was still being answered. */
  readonly concurrentSameId: string[] = [];
  readonly #open = new Map<string, number>();
  /** Decides each answer from the request number (1-based); default: accept. */
  answer: (n: number, payload: Delivery['payload']) => Answer = () => 'ok';
  /** How long a 'hang' answer stalls at most; `release()` answers the stalled ones sooner. */
  hangMs = 1500;
  /** Accepting takes this long (the event is already recorded): a sender can die before the answer. */
  okDelayMs = 0;
  url = '';
  /** Stalled ('hang') answers not sent yet. */
  readonly #stalled = new Set<() => void>();
  #onStall: (() => void)[] = [];
  #server: Server | null = null;
  #sockets = new Set<Socket>();
  readonly #wh: Webhook;

  constructor(secret = TEST_SECRET) {
    this.#wh = new Webhook(secret);
  }

  async start(): Promise<string> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((r) => this.#server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hooks`;
    return this.url;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
  }

  /** Answers every stalled request now (204): a test stalls the receiver exactly as long as it
   *  needs (until the event it checks for), not for a guessed number of milliseconds. */
  release(): void {
    for (const answer of [...this.#stalled]) answer();
  }

  /** Resolves once a request is stalled (at once if one is). */
  stalled(): Promise<void> {
    if (this.#stalled.size) return Promise.resolve();
    return new Promise((r) => this.#onStall.push(r));
  }

  /** Delivered (2xx) payloads, in arrival order. */
  get accepted(): Delivery[] {
    return this.deliveries.filter((d) => d.answer === 'ok');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    this.requests++;
    const headers = { 'webhook-id': String(req.headers['webhook-id']), 'webhook-timestamp': String(req.headers['webhook-timestamp']), 'webhook-signature': String(req.headers['webhook-signature']) };
    let payload: Delivery['payload'];
    try {
      payload = this.#wh.verify(body, headers) as Delivery['payload'];
      if (req.headers['content-type'] !== 'application/json') throw new Error(`content-type ${req.headers['content-type']}`);
      if (payload.id !== headers['webhook-id']) throw new Error('body id differs from webhook-id');
    } catch (e) {
      this.badSignatures.push(`${headers['webhook-id']}: ${(e as Error).message}`);
      res.writeHead(401).end();
      return;
    }
    const answer = this.answer(this.requests, payload);
    this.deliveries.push({ id: headers['webhook-id'], timestamp: headers['webhook-timestamp'], body, payload, answer, at: Date.now() });
    const id = headers['webhook-id'];
    if (this.#open.get(id)) this.concurrentSameId.push(id);
    this.#open.set(id, (this.#open.get(id) ?? 0) + 1);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => {
      this.inFlight--;
      this.#open.set(id, this.#open.get(id)! - 1);
    });
    if (answer === 'ok') {
      if (this.okDelayMs) setTimeout(() => res.writeHead(204).end(), this.okDelayMs).unref();
      else res.writeHead(204).end();
    }
    else if (answer === '500') res.writeHead(500).end('boom');
    else if (answer === '410') res.writeHead(410).end();
    else if (answer === 'reset') req.socket.destroy();
    else if (answer === 'hang') {
      const answerNow = () => {
        clearTimeout(timer);
        this.#stalled.delete(answerNow);
        if (!res.writableEnded && !res.destroyed) res.writeHead(204).end();
      };
      const timer = setTimeout(answerNow, this.hangMs).unref();
      this.#stalled.add(answerNow);
      res.on('close', () => this.#stalled.delete(answerNow));
      for (const r of this.#onStall.splice(0)) r();
    }
    else res.writeHead(answer.status, answer.retryAfter ? { 'retry-after': answer.retryAfter } : {}).end();
  }
}
