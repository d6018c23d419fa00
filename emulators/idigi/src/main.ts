/** Stand-alone iDigi emulator: settings from the environment, JSON logs on stdout. */
import { createLogger, env, loadConfigOrExit } from "@meridian/service-kit";
import { z } from "zod";
import { startIdigiEmulator } from "./index.js";

const schema = z.object({
  IDIGI_EMU_HOST: z.string().default("0.0.0.0"),
  IDIGI_EMU_HTTP_PORT: env.port(8080),
  IDIGI_EMU_PUSH_PORT: env.port(3200),
  IDIGI_EMU_PUSH_TLS_PORT: env.port(3201),
  IDIGI_EMU_TLS: env.bool(true),
  IDIGI_EMU_TLS_HOSTS: env.list(["localhost", "127.0.0.1", "::1"]),
  IDIGI_EMU_CA_PEM_PATH: z.string().optional(),
  IDIGI_EMU_USERNAME: z.string().min(1).default("emulator"),
  IDIGI_EMU_PASSWORD: z.string().min(1).default("emulator"),
  IDIGI_EMU_CUSTOMER_ID: z.coerce.number().int().min(1).default(1234),
  IDIGI_EMU_AUTO_EMIT_RATE: z.coerce.number().min(0).default(0),
  IDIGI_EMU_DEVICES: z.coerce.number().int().min(1).default(3),
  IDIGI_EMU_CLOCK: z.enum(["sequence", "wall"]).default("wall"),
  IDIGI_EMU_MAX_IN_FLIGHT: z.coerce.number().int().min(0).default(0),
  IDIGI_EMU_ACK_TIMEOUT_MS: env.durationMs(0),
  IDIGI_EMU_STRICT_ACKS: env.bool(false),
  IDIGI_EMU_REFUSE_SILENTLY: env.bool(false),
  IDIGI_EMU_BASE64: env.bool(false),
  IDIGI_EMU_BASE64_COMPRESSION_BYTE: env.bool(true),
  IDIGI_EMU_V1_ACK_OPTION: z.enum(["stored", "unknown"]).default("stored"),
});

const cfg = loadConfigOrExit(schema);
const log = createLogger("emulator-idigi");

const emu = await startIdigiEmulator({
  host: cfg.IDIGI_EMU_HOST,
  httpPort: cfg.IDIGI_EMU_HTTP_PORT,
  pushPort: cfg.IDIGI_EMU_PUSH_PORT,
  pushTlsPort: cfg.IDIGI_EMU_PUSH_TLS_PORT,
  tls: cfg.IDIGI_EMU_TLS,
  tlsHosts: cfg.IDIGI_EMU_TLS_HOSTS,
  ...(cfg.IDIGI_EMU_CA_PEM_PATH ? { caPemPath: cfg.IDIGI_EMU_CA_PEM_PATH } : {}),
  users: [{ username: cfg.IDIGI_EMU_USERNAME, password: cfg.IDIGI_EMU_PASSWORD, cstId: cfg.IDIGI_EMU_CUSTOMER_ID }],
  autoEmitRate: cfg.IDIGI_EMU_AUTO_EMIT_RATE,
  devices: { devices: cfg.IDIGI_EMU_DEVICES, clock: cfg.IDIGI_EMU_CLOCK },
  maxInFlight: cfg.IDIGI_EMU_MAX_IN_FLIGHT,
  ackTimeoutMs: cfg.IDIGI_EMU_ACK_TIMEOUT_MS,
  acceptLegacyAck: !cfg.IDIGI_EMU_STRICT_ACKS,
  refuseSilently: cfg.IDIGI_EMU_REFUSE_SILENTLY,
  base64Payloads: cfg.IDIGI_EMU_BASE64,
  base64CompressionByte: cfg.IDIGI_EMU_BASE64_COMPRESSION_BYTE,
  v1AckOption: cfg.IDIGI_EMU_V1_ACK_OPTION,
  logger: log,
});

log.info({ httpUrl: emu.httpUrl, pushPort: emu.pushPort, pushTlsPort: emu.pushTlsPort, caPemPath: emu.caPemPath }, "ready");

const shutdown = async (signal: string) => {
  log.info({ signal }, "stopping");
  await emu.stop();
  process.exit(0);
};
process.once("SIGINT", () => void shutdown("SIGINT"));
process.once("SIGTERM", () => void shutdown("SIGTERM"));
