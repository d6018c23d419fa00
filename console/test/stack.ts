import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOmfEmulator } from "@meridian/emulator-omf";
import { gatewayConfig, startGateway } from "@meridian/gateway";
import { omfSenderConfig, startOmfSender } from "@meridian/omf-sender";
import { freePort, startForTest, startNatsServer, testIdentities, testLogger } from "@meridian/testing";

/** A key holding every read role and no admin one: what an operator who may look but not change gets. */
export const VIEWER_KEY = `mrd_00000000ff01_${createHash("sha256").update("meridian console viewer").digest("base64url")}`;

/**
 * The services the console talks to, in this process over real sockets: nats-server, the OMF emulator (PI Web API and
 * Data Hub), omf-sender and the gateway serving the built console (dist/). Cheaper than the system test's images, and
 * the same code. Their addresses reach the tests through the environment (workers start after this).
 */
export default async function stack() {
  const nats = await startNatsServer();
  const emulator = await startOmfEmulator();
  const dir = mkdtempSync(join(tmpdir(), "meridian-console-"));
  const identities = testIdentities();
  identities.apiKeys.push({
    id: VIEWER_KEY.slice(4, 16),
    name: "console-viewer",
    sha256: createHash("sha256").update(VIEWER_KEY).digest("hex"),
    roles: ["status:read", "routes:read", "deadletters:read", "telemetry:read", "platform:read"],
  });
  const identitiesFile = join(dir, "identities.json");
  writeFileSync(identitiesFile, JSON.stringify(identities));
  const logger = testLogger();
  const sender = await startForTest(
    startOmfSender,
    omfSenderConfig,
    {
      NATS_URL: nats.url,
      AUTH_IDENTITIES_FILE: identitiesFile,
      OMF_CREDENTIALS_KEY: randomBytes(32).toString("base64"),
      OMF_ALLOW_INSECURE_ENDPOINTS: "true",
      OMF_ALLOWED_HOSTS: "127.0.0.1",
      OMF_LINGER_MS: "50",
    },
    {},
    logger,
  );
  // A fixed port, so that the gateway can be restarted where the page expects it.
  const port = String(await freePort());
  const startOurGateway = () =>
    startForTest(
      startGateway,
      gatewayConfig,
      {
        PORT: port,
        NATS_URL: nats.url,
        AUTH_IDENTITIES_FILE: identitiesFile,
        OMF_SENDER_URL: sender.service.url,
        CONSOLE_DIR: join(import.meta.dirname, "..", "dist"),
      },
      {},
      logger,
    );
  let gateway = await startOurGateway();
  // POST /restart-gateway stops the gateway and starts it again after `down` ms: the tests' way to restart it, since
  // it runs in this process and not in theirs.
  const control = createServer((req, res) => {
    const down = Number(new URL(req.url ?? "/", "http://x").searchParams.get("down") ?? "1000");
    void (async () => {
      await gateway.stop();
      await new Promise((r) => setTimeout(r, down));
      gateway = await startOurGateway();
      res.end("restarted\n");
    })().catch((err: Error) => {
      res.statusCode = 500;
      res.end(err.message);
    });
  });
  await new Promise<void>((r) => control.listen(0, "127.0.0.1", r));
  const address = control.address();
  process.env.CONSOLE_CONTROL_URL = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  process.env.CONSOLE_URL = gateway.service.url;
  process.env.OMF_EMULATOR_URL = emulator.url;
  process.env.CONSOLE_VIEWER_KEY = VIEWER_KEY;
  return async () => {
    control.close();
    await gateway.stop();
    await sender.stop();
    await emulator.stop();
    await nats.stop();
  };
}
