/** The emulator as a stand-alone server (compose, k8s): settings from the environment, the CA written for others. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stopOnSignals } from "@meridian/emulator-kit";
import { createLogger, loadConfigOrExit } from "@meridian/service-kit";
import { z } from "zod";
import { startIotcEmulator } from "./index.js";

const port = (def: number) => z.coerce.number().int().min(0).max(65535).default(def);
const list = z
  .string()
  .default("")
  .transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean),
  );

const Env = z.object({
  IOTC_EMULATOR_HOST: z.string().min(1).default("0.0.0.0"),
  IOTC_EMULATOR_PORT: port(8883),
  IOTC_EMULATOR_HTTPS_PORT: port(8443),
  /** Extra certificate names (the compose service name), comma-separated. */
  IOTC_EMULATOR_HOST_NAMES: list,
  IOTC_EMULATOR_ID_SCOPE: z.string().optional(),
  IOTC_EMULATOR_HUB_HOST_NAME: z.string().optional(),
  IOTC_EMULATOR_GROUP_KEY: z.string().optional(),
  IOTC_EMULATOR_API_TOKEN: z.string().optional(),
  IOTC_EMULATOR_ASSIGNING_POLLS: z.coerce.number().int().min(0).max(100).default(1),
  IOTC_EMULATOR_SAS_GRACE_MS: z.coerce.number().int().min(0).max(86_400_000).default(0),
  /** Directory that gets ca.pem, so containers can trust the emulator. */
  IOTC_EMULATOR_CA_DIR: z.string().optional(),
});

const env = loadConfigOrExit(Env);
const log = createLogger("emulator-iotc");

const emulator = await startIotcEmulator({
  host: env.IOTC_EMULATOR_HOST,
  port: env.IOTC_EMULATOR_PORT,
  httpsPort: env.IOTC_EMULATOR_HTTPS_PORT,
  extraHostNames: env.IOTC_EMULATOR_HOST_NAMES,
  assigningPolls: env.IOTC_EMULATOR_ASSIGNING_POLLS,
  sasGraceMs: env.IOTC_EMULATOR_SAS_GRACE_MS,
  ...(env.IOTC_EMULATOR_ID_SCOPE ? { idScope: env.IOTC_EMULATOR_ID_SCOPE } : {}),
  ...(env.IOTC_EMULATOR_HUB_HOST_NAME ? { hubHostName: env.IOTC_EMULATOR_HUB_HOST_NAME } : {}),
  ...(env.IOTC_EMULATOR_GROUP_KEY ? { groupKey: env.IOTC_EMULATOR_GROUP_KEY } : {}),
  ...(env.IOTC_EMULATOR_API_TOKEN ? { apiToken: env.IOTC_EMULATOR_API_TOKEN } : {}),
  logger: log,
});

if (env.IOTC_EMULATOR_CA_DIR) {
  mkdirSync(env.IOTC_EMULATOR_CA_DIR, { recursive: true });
  writeFileSync(join(env.IOTC_EMULATOR_CA_DIR, "ca.pem"), emulator.caPem);
}

// The group key and the API token are secrets: logged only when generated here, where nobody else could know them,
// and only as "generated", never the value. Fetch them through the admin surface's state if needed.
log.info(
  {
    mqttHost: emulator.mqttHost,
    httpsUrl: emulator.httpsUrl,
    idScope: emulator.idScope,
    hubHostName: emulator.hubHostName,
    caDir: env.IOTC_EMULATOR_CA_DIR,
    groupKey: env.IOTC_EMULATOR_GROUP_KEY ? "from IOTC_EMULATOR_GROUP_KEY" : "generated",
  },
  "IoT Central emulator listening",
);

stopOnSignals(() => emulator.stop(), log);
