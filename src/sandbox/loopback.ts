/**
 * The lifecycle both sandboxes share: an HTTP server on 127.0.0.1 that tracks its sockets, so
 * stopping it ends keep-alive connections at once instead of waiting for clients to hang up.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export class LoopbackServer {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server) {
    this.#server = server;
    server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  /** Listens on 127.0.0.1:`port` (0: any free port). */
  static async listen(handler: (req: IncomingMessage, res: ServerResponse) => void, port = 0): Promise<LoopbackServer> {
    const server = createServer(handler);
    const s = new LoopbackServer(server);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
