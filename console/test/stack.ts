import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { Compression, IdigiListenerService } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { startIdigiEmulator } from "@meridian/emulator-idigi";
import { startOmfEmulator } from "@meridian/emulator-omf";
import { gatewayConfig, startGateway } from "@meridian/gateway";
import { idigiListenerConfig, startIdigiListener } from "@meridian/idigi-listener";
import { omfSenderConfig, startOmfSender } from "@meridian/omf-sender";
import { freePort, startForTest, startNatsServer, testIdentities, testLogger, testTransport } from "@meridian/testing";
import { startPlatforms } from "./stack-platforms.js";
import { startSignInProvider } from "./stack-sign-in.js";

/** A key holding every read role and no admin one: what an operator who may look but not change gets. */
export const VIEWER_KEY = `mrd_00000000ff01_${createHash("sha256").update("meridian console viewer").digest("base64url")}`;

/**
 * The services the console talks to, in this process over real sockets: nats-server, the iDigi emulator and
 * idigi-listener (one DataPoint monitor, its session pushing to the bus), the OMF emulator (PI Web API and Data Hub),
 * omf-sender and the gateway serving the built console (dist/). Cheaper than the system test's images, and
 * the same code. Their addresses reach the tests through the environment (workers start after this).
 */
export default async function stack() {
  const started = Date.now();
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
  // A fixed port, so that the gateway can be restarted where the page expects it (and is the console's redirect URI).
  const port = String(await freePort());
  // The console's sign-in by redirect: the Entra emulator as its OIDC provider (test/stack-sign-in.ts); the services
  // behind the gateway verify its tokens too, since the gateway passes the caller's credential on.
  const signIn = await startSignInProvider(`http://127.0.0.1:${port}`);
  const sender = await startForTest(
    startOmfSender,
    omfSenderConfig,
    {
      NATS_URL: nats.url,
      AUTH_IDENTITIES_FILE: identitiesFile,
      ...signIn.auth,
      OMF_CREDENTIALS_KEY: randomBytes(32).toString("base64"),
      OMF_ALLOW_INSECURE_ENDPOINTS: "true",
      OMF_ALLOWED_HOSTS: "127.0.0.1",
      OMF_LINGER_MS: "50",
    },
    {},
    logger,
  );
  // Wall-clock times on the records, so that the live chart (the last minute) shows them.
  const idigi = await startIdigiEmulator({ tls: false, devices: { devices: 2, clock: "wall" } });
  const listener = await startForTest(
    startIdigiListener,
    idigiListenerConfig,
    {
      NATS_URL: nats.url,
      AUTH_IDENTITIES_FILE: identitiesFile,
      ...signIn.auth,
      IDIGI_URL: idigi.httpUrl,
      IDIGI_PUSH_PORT: String(idigi.pushPort),
      IDIGI_USERNAME: "emulator",
      IDIGI_PASSWORD: "emulator",
      IDIGI_ALLOW_INSECURE: "true",
      INSTANCE_ID: "console",
    },
    { startWaitMs: 5_000 },
    logger,
  );
  const { monitor } = await createClient(IdigiListenerService, testTransport(listener.service.url)).createMonitor({
    topics: ["DataPoint"],
    compression: Compression.NONE,
    batchSize: 1,
    batchDurationSeconds: 0,
    startSession: true,
  });
  // iotc-bridge, omnia-reader and oci-twin-manager with their emulators (test/stack-platforms.ts).
  const platforms = await startPlatforms(nats.url, identitiesFile, dir, logger, signIn.auth);
  const startOurGateway = () =>
    startForTest(
      startGateway,
      gatewayConfig,
      {
        PORT: port,
        NATS_URL: nats.url,
        AUTH_IDENTITIES_FILE: identitiesFile,
        OMF_SENDER_URL: sender.service.url,
        IDIGI_LISTENER_URL: listener.service.url,
        ...platforms.gateway,
        ...signIn.gateway,
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
  process.env.IDIGI_EMULATOR_URL = idigi.httpUrl;
  process.env.IDIGI_MONITOR_ID = monitor!.id;
  process.env.CONSOLE_VIEWER_KEY = VIEWER_KEY;
  Object.assign(process.env, platforms.env);
  Object.assign(process.env, signIn.env);
  console.log(`measure: the stack started in ${Date.now() - started} ms`);
  return async () => {
    control.close();
    await gateway.stop();
    await sender.stop();
    await listener.stop();
    await platforms.stop();
    await signIn.stop();
    await idigi.stop();
    await emulator.stop();
    await nats.stop();
  };
}
