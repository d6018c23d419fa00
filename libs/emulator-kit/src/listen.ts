/**
 * Listening and closing for any node server (net, tls, http, https). `close()` does not wait for clients: an
 * emulator holds kept-alive HTTP connections, push sessions and requests parked by a `hang` fault, and a test's
 * `stop()` must not sit out their timeouts.
 */
import type { AddressInfo, Server, Socket } from "node:net";

export interface ListenOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
}

export interface ListeningServer {
  /** The port really bound (the free one picked when asked for 0). */
  readonly port: number;
  /** The host as it goes into a URL: a wildcard bind address becomes 127.0.0.1, an IPv6 address is bracketed. */
  readonly host: string;
  /** `<scheme>://<host>:<port>`, no trailing slash. */
  url(scheme: string): string;
  /** Stops accepting, destroys every open connection and resolves once the server is closed. Idempotent. */
  close(): Promise<void>;
}

/** The host a client on this machine can reach a server bound to `bindHost` at, written for a URL. */
export function urlHost(bindHost: string): string {
  if (bindHost === "0.0.0.0" || bindHost === "::" || bindHost === "") return "127.0.0.1";
  return bindHost.includes(":") ? `[${bindHost}]` : bindHost;
}

export async function listen(server: Server, options: ListenOptions = {}): Promise<ListeningServer> {
  const bindHost = options.host ?? "127.0.0.1";
  // Tracked from the first connection on: tls and https servers emit `connection` with the raw socket too.
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, bindHost, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = urlHost(bindHost);
  let closed: Promise<void> | undefined;
  return {
    port,
    host,
    url: (scheme) => `${scheme}://${host}:${port}`,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        sockets.clear();
      });
      return closed;
    },
  };
}
