import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { CliContext } from "./context.js";
import { CliError, EXIT, exitCodeOf } from "./exit.js";
import { createOutput, type OutStream } from "./output.js";
import { createProgress } from "./progress.js";
import type { Settings } from "./settings.js";
import { gatewayTransport } from "./transport.js";

export interface Io {
  stdout: OutStream;
  stderr: OutStream;
  env: NodeJS.ProcessEnv;
}

export interface Runtime {
  ctx: CliContext;
  close(): void;
}

/** The context a verb gets, built from the decided settings once commander has parsed the global options. */
export function createRuntime(settings: Settings, io: Io, signal: AbortSignal): Runtime {
  const out = createOutput({ format: settings.output, stdout: io.stdout, stderr: io.stderr, colour: settings.colour });
  let connection: ReturnType<typeof gatewayTransport> | undefined;
  if (settings.insecure && settings.gateway.protocol === "https:") {
    out.warn(`--insecure: the certificate of ${settings.gateway.origin} is not verified; anyone in between can read the credential`);
  }
  const ctx: CliContext = {
    client<S extends DescService>(service: S) {
      connection ??= gatewayTransport(settings);
      return createClient(service, connection.transport);
    },
    out,
    signal,
    progress(label, total) {
      return createProgress(label, total, io.stderr, settings.output === "table");
    },
  };
  return { ctx, close: () => connection?.close() };
}

const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "ETIMEDOUT", "EPIPE"]);

function causeCode(err: unknown, match: (code: string) => boolean): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string" && match(e.code)) return e.code;
  }
  return undefined;
}

const unreachable = (err: unknown) =>
  causeCode(err, (c) => UNREACHABLE.has(c)) ?? [...UNREACHABLE].find((c) => (err instanceof Error ? err.message : "").includes(c));
// Node's codes for a certificate that does not verify (OpenSSL's verify results) and for a failed handshake.
const untrusted = (err: unknown) =>
  causeCode(err, (c) => /^(CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)/.test(c));
const handshake = (err: unknown) =>
  causeCode(err, (c) => c.startsWith("ERR_SSL_")) ??
  (/SSL routines|alert/.test(err instanceof Error ? err.message : "") ? "TLS" : undefined);

/** The one line printed for a failed verb (after "error: "), and its exit code. */
export function describeError(err: unknown, gateway: URL | undefined, timeoutMs?: number): { message: string; exitCode: number } {
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode };
  const ce = ConnectError.from(err);
  const exitCode = exitCodeOf(err);
  const where = gateway ? gateway.origin : "the gateway";
  if (ce.code === Code.Unavailable || ce.code === Code.Internal || ce.code === Code.Unknown) {
    const code = unreachable(err);
    if (code) return { message: `cannot reach the gateway at ${where} (${code})`, exitCode: EXIT.unavailable };
    const cert = untrusted(err);
    if (cert) {
      return {
        message: `the certificate of ${where} is not trusted (${cert}: ${ce.rawMessage}); give --ca-file with the CA it chains to, or check the URL's host name`,
        exitCode: EXIT.unavailable,
      };
    }
    const tls = handshake(err);
    if (tls) {
      const hint = /certificate required|handshake failure|bad certificate|unknown ca/i.test(ce.rawMessage)
        ? "; it asks for a client certificate that verifies: --cert-file and --key-file"
        : "";
      const reason = ce.rawMessage.match(/alert ([a-z ]+)/i)?.[1]?.trim() ?? ce.rawMessage;
      return { message: `the TLS handshake with ${where} failed (${reason})${hint}`, exitCode: EXIT.unavailable };
    }
  }
  if (ce.code === Code.DeadlineExceeded && timeoutMs) {
    return { message: `${where} did not answer within ${timeoutMs / 1000} s (--timeout)`, exitCode };
  }
  if (ce.code === Code.Unauthenticated) {
    return { message: `${ce.rawMessage} (unauthenticated: give --api-key, --api-key-file or --token, or a profile with one)`, exitCode };
  }
  const codeName = Code[ce.code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
  return { message: `${ce.rawMessage} (${codeName})`, exitCode };
}
