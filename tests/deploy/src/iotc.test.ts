/**
 * iotc-bridge and its emulator as deployed. In compose the pieces must agree with each other for `docker compose up`
 * to show the iDigi devices in IoT Central with no setup: the application's id scope, hosts and group key are the
 * emulator's, the CA the bridge trusts is the one the emulator writes, the route targets the application. In
 * Kubernetes every group key the applications file names is a mounted Secret key, apart from the credentials key.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT, render } from "./render.js";

const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

interface ComposeService {
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
}
interface Application {
  id: string;
  id_scope?: string;
  provisioning_host?: string;
  gateway_host?: string;
  group_key?: string;
  group_key_file?: string;
}

const compose = parse(read("docker-compose.yml"), { merge: true }) as { services: Record<string, ComposeService> };
const emulator = compose.services["iotc-emulator"]!;
const bridge = compose.services["iotc-bridge"]!;
const emuEnv = emulator.environment ?? {};
const bridgeEnv = bridge.environment ?? {};

/** A bind mount or volume `source:target[:ro]` of a compose service whose target holds `path`, and `path` below it. */
function mountOf(service: ComposeService, path: string): { source: string; rest: string } | undefined {
  for (const v of service.volumes ?? []) {
    const [source, target] = v.split(":") as [string, string];
    if (path === target || path.startsWith(`${target}/`)) return { source, rest: posix.relative(target, path) };
  }
  return undefined;
}

/** What the bridge's validation accepts as a SAS key (api/validation.ts): base64 of 16 to 64 bytes. */
function isSasKey(key: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || key.length % 4 !== 0) return false;
  const bytes = Buffer.from(key, "base64").length;
  return bytes >= 16 && bytes <= 64;
}

/** The settings iotc-bridge reads (its zod schema, plus the credentials key settings service-kit adds for IOTC). */
function bridgeSettings(): Set<string> {
  const names = [...read("services/iotc-bridge/src/config.ts").matchAll(/^\s+(IOTC_[A-Z0-9_]+):/gm)].map((m) => m[1]!);
  return new Set([...names, "IOTC_CREDENTIALS_KEY", "IOTC_CREDENTIALS_PREVIOUS_KEYS"]);
}

describe("docker-compose.yml: iotc-bridge on the IoT Central emulator", () => {
  const applicationsFile = mountOf(bridge, bridgeEnv.IOTC_APPLICATIONS_FILE ?? "");
  const applications = (JSON.parse(read(applicationsFile?.source ?? "")) as { applications: Application[] }).applications;
  const demo = applications.find((a) => a.id === "plant-demo");

  it("declares the application plant-demo from a file in the repository", () => {
    expect(applicationsFile?.source).toBe("./deploy/compose/iotc-applications.json");
    expect(demo).toBeDefined();
  });

  it("points plant-demo at the emulator: its id scope, and DPS and the hub at its MQTT port by a name its certificate carries", () => {
    expect(demo!.id_scope).toBe(emuEnv.IOTC_EMULATOR_ID_SCOPE);
    const names = (emuEnv.IOTC_EMULATOR_HOST_NAMES ?? "").split(",").map((s) => s.trim());
    for (const host of [demo!.provisioning_host!, demo!.gateway_host!]) {
      const [name, port] = host.split(":");
      expect(Object.keys(compose.services), host).toContain(name);
      expect(names, `${host}: a name of the emulator's certificate`).toContain(name);
      expect(port, host).toBe(emuEnv.IOTC_EMULATOR_PORT);
    }
  });

  it("gives plant-demo the emulator's group key by reference, a file inside IOTC_SECRET_DIR, never the key itself", () => {
    expect(demo!.group_key).toBeUndefined();
    const file = demo!.group_key_file!;
    expect(file.startsWith(`${bridgeEnv.IOTC_SECRET_DIR}/`), `${file} inside IOTC_SECRET_DIR`).toBe(true);
    const mount = mountOf(bridge, file)!;
    expect(mount.source.startsWith("./deploy/compose/"), file).toBe(true);
    const key = read(join(mount.source, mount.rest)).trim();
    expect(isSasKey(key), "a base64 SAS key of 16 to 64 bytes").toBe(true);
    expect(key, "the emulator's enrollment group key").toBe(emuEnv.IOTC_EMULATOR_GROUP_KEY);
  });

  it("trusts the CA the emulator writes, from the shared volume, and starts only once the emulator is healthy", () => {
    const ca = mountOf(bridge, bridgeEnv.IOTC_CA_FILE ?? "")!;
    const written = mountOf(emulator, `${emuEnv.IOTC_EMULATOR_CA_DIR}/ca.pem`)!;
    expect(ca.source).toBe(written.source);
    expect(ca.rest).toBe(written.rest);
    expect(bridge.depends_on?.["iotc-emulator"]?.condition).toBe("service_healthy");
    // The healthcheck asks the emulator's HTTPS listener, which starts after its MQTT one.
    expect(new URL(emuEnv.HEALTHCHECK_URL!).port).toBe(emuEnv.IOTC_EMULATOR_HTTPS_PORT);
  });

  it("sets only settings iotc-bridge has, the published development credentials key among them", () => {
    const known = bridgeSettings();
    for (const name of Object.keys(bridgeEnv).filter((k) => k.startsWith("IOTC_"))) expect(known, name).toContain(name);
    // `${NAME:-default}`: the default is what runs unless the operator sets their own.
    const defaultOf = (value: string | undefined) => /^\$\{\w+:-(.*)\}$/.exec(value ?? "")?.[1];
    const development = /DEVELOPMENT_CREDENTIALS_KEY = "([^"]+)"/.exec(read("libs/service-kit/src/sealing.ts"))?.[1];
    expect(development).toBeDefined();
    expect(defaultOf(bridgeEnv.IOTC_CREDENTIALS_KEY)).toBe(development);
    expect(defaultOf(compose.services["omf-sender"]!.environment!.OMF_CREDENTIALS_KEY)).toBe(development);
  });

  it.skipIf(!existsSync(join(ROOT, "emulators/iotc/src/main.ts")))(
    "sets only settings the emulator's main.ts reads (skipped while emulators/iotc/src/main.ts does not exist)",
    () => {
      const main = read("emulators/iotc/src/main.ts");
      for (const name of Object.keys(emuEnv).filter((k) => k.startsWith("IOTC_EMULATOR_"))) expect(main, name).toContain(name);
    },
  );

  it("routes the iDigi devices into plant-demo, and every route into IoT Central targets a declared application", () => {
    const routes = (
      JSON.parse(read("deploy/compose/routes.json")) as {
        routes: Array<{ id: string; source: { platform: string }; sink: { platform: string; target: string } }>;
      }
    ).routes;
    const route = routes.find((r) => r.id === "idigi-to-iotc");
    expect(route?.source.platform).toBe("PLATFORM_IDIGI");
    expect(route?.sink).toEqual({ platform: "PLATFORM_IOT_CENTRAL", target: "plant-demo" });
    for (const r of routes.filter((x) => x.sink.platform === "PLATFORM_IOT_CENTRAL"))
      expect(
        applications.map((a) => a.id),
        r.id,
      ).toContain(r.sink.target);
  });

  it("the gateway serves IotcBridgeService by forwarding to iotc-bridge's port", () => {
    const url = new URL(compose.services.gateway!.environment!.IOTC_BRIDGE_URL!);
    expect(url.hostname).toBe("iotc-bridge");
    expect(url.port).toBe(bridgeEnv.PORT);
  });
});

interface K8sObject {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: Record<string, unknown>;
}
interface PodSpec {
  containers: Array<{ env?: Array<{ name: string; value?: string }>; volumeMounts?: Array<{ name: string; mountPath: string }> }>;
  volumes?: Array<{
    name: string;
    secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
    configMap?: { name: string };
  }>;
}

describe.each(["deploy/k8s/base", "deploy/k8s/overlays/local"])("kustomize %s: iotc-bridge", (path) => {
  const objects = render<K8sObject>(path);
  const deployment = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "iotc-bridge")!;
  const spec = deployment.spec as { replicas: number; strategy: { type: string }; template: { spec: PodSpec } };
  const pod = spec.template.spec;
  const env = Object.fromEntries((pod.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
  /** The volume and the path inside it that a file of the container is mounted from. */
  const sourceOf = (file: string) => {
    const mount = pod.containers[0]!.volumeMounts!.find((m) => file.startsWith(`${m.mountPath}/`))!;
    return { volume: pod.volumes!.find((v) => v.name === mount.name)!, path: posix.relative(mount.mountPath, file) };
  };

  it("runs one instance, replaced rather than rolled, so that no device id has two connections", () => {
    expect(spec.replicas).toBe(1);
    expect(spec.strategy.type).toBe("Recreate");
  });

  it("reads the credentials key from the iotc-bridge-secrets Secret as a file, outside IOTC_SECRET_DIR", () => {
    expect(env.IOTC_CREDENTIALS_KEY).toBeUndefined();
    const file = env.IOTC_CREDENTIALS_KEY_FILE!;
    expect(file.startsWith(`${env.IOTC_SECRET_DIR}/`)).toBe(false);
    const { volume, path: item } = sourceOf(file);
    expect(volume.secret?.secretName).toMatch(/^iotc-bridge-secrets(-[a-z0-9]+)?$/);
    expect(volume.secret?.items).toEqual([{ key: "credentials-key", path: item }]);
  });

  it("every group_key_file of the applications ConfigMap is a key of iotc-bridge-secrets mounted in IOTC_SECRET_DIR", () => {
    const { volume, path: file } = sourceOf(env.IOTC_APPLICATIONS_FILE!);
    const configMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === volume.configMap?.name)!;
    const applications = (JSON.parse(configMap.data![file]!) as { applications: Application[] }).applications;
    expect(applications.length).toBeGreaterThan(0);
    const secret = objects.find((o) => o.kind === "Secret" && o.metadata.name.startsWith("iotc-bridge-secrets"));
    for (const a of applications) {
      expect(a.group_key, a.id).toBeUndefined();
      const keyFile = a.group_key_file!;
      expect(keyFile.startsWith(`${env.IOTC_SECRET_DIR}/`), `${a.id}: ${keyFile}`).toBe(true);
      const source = sourceOf(keyFile);
      expect(source.volume.secret?.secretName, a.id).toMatch(/^iotc-bridge-secrets(-[a-z0-9]+)?$/);
      const item = source.volume.secret?.items?.find((i) => i.path === source.path);
      expect(item, `${a.id}: ${keyFile} mounted`).toBeDefined();
      expect(item!.key, a.id).not.toBe("credentials-key");
      // The base ships no Secret; the local overlay generates one that must hold the key.
      if (secret) expect(isSasKey(Buffer.from(secret.data![item!.key]!, "base64").toString()), a.id).toBe(true);
    }
  });
});
