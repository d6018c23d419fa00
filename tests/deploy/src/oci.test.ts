/**
 * oci-twin-manager and its emulator as deployed. In compose the pieces must agree with each other for `docker compose up`
 * to show the demo twin's data in PI with no setup: the twin's external key is the device the emulator simulates and
 * its auth id the vault secret whose plaintext is the twin's device secret, the manager reaches the emulator's hosts by
 * a name its certificate carries and trusts the CA and API key the emulator writes, the data-access credentials are the
 * emulator's, and a route takes OCI's events into PI. In Kubernetes no secret is an environment value or in the twins
 * ConfigMap, and OKE workload identity finds its token where the SDK reads it.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT, render } from "./render.js";

const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

interface ComposeService {
  image?: string;
  user?: string;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
}

const composeFile = parse(read("docker-compose.yml"), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};
const emulator = composeFile.services["oci-emulator"]!;
const manager = composeFile.services["oci-twin-manager"]!;
const emuEnv = emulator.environment ?? {};
const env = manager.environment ?? {};

/** A bind mount or volume `source:target[:ro]` of a compose service whose target holds `path`, and `path` below it. */
function mountOf(service: ComposeService, path: string): { source: string; rest: string; readOnly: boolean } | undefined {
  for (const v of service.volumes ?? []) {
    const [source, target, mode] = v.split(":") as [string, string, string | undefined];
    if (path === target || path.startsWith(`${target}/`)) return { source, rest: posix.relative(target, path), readOnly: mode === "ro" };
  }
  return undefined;
}

/** A field of a proto JSON object by its JSON name or its proto name (the parser takes both). */
function field<T>(o: Record<string, unknown> | undefined, camel: string): T | undefined {
  if (!o) return undefined;
  const snake = camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return (o[camel] ?? o[snake]) as T | undefined;
}

interface DtdlContent {
  "@type": string | string[];
  name: string;
  schema: unknown;
}
interface Route {
  condition: string;
  payloadMapping?: Record<string, string>;
}

/** The settings oci-twin-manager reads: its zod schema, plus the credentials key settings service-kit adds for OCI. */
function managerSettings(): Set<string> {
  const names = [...read("services/oci-twin-manager/src/config.ts").matchAll(/^\s+(OCI_[A-Z0-9_]+):/gm)].map((m) => m[1]!);
  return new Set([...names, "OCI_CREDENTIALS_KEY", "OCI_CREDENTIALS_PREVIOUS_KEYS"]);
}

/** `authId=plaintext,…` of OCI_EMU_VAULT_SECRETS. */
function vaultSecrets(): Map<string, string> {
  return new Map(
    (emuEnv.OCI_EMU_VAULT_SECRETS ?? "")
      .split(",")
      .filter(Boolean)
      .map((entry) => {
        const at = entry.indexOf("=");
        return [entry.slice(0, at).trim(), entry.slice(at + 1)] as [string, string];
      }),
  );
}

describe("docker-compose.yml: oci-twin-manager on the OCI IoT emulator", () => {
  const twinsFile = mountOf(manager, env.OCI_TWINS_FILE ?? "");
  const twins = (JSON.parse(read(twinsFile?.source ?? "")) as { twins: Array<Record<string, unknown>> }).twins;
  const demo = twins.find((t) => t.key === "m5-env-01");
  const model = field<Record<string, unknown>>(demo, "model");
  const spec = field<{ "@id": string; "@type": string; contents: DtdlContent[] }>(model, "spec");
  const adapter = field<Record<string, unknown>>(demo, "adapter");
  const envelope = field<{ referenceEndpoint: string; envelopeMapping?: { timeObserved?: string } }>(adapter, "inboundEnvelope");
  const routes = field<Route[]>(adapter, "inboundRoutes") ?? [];

  it("declares the twin m5-env-01 from a file in the repository", () => {
    expect(twinsFile?.source).toBe("./deploy/compose/oci-twins.json");
    expect(twinsFile?.readOnly).toBe(true);
    expect(demo).toBeDefined();
    for (const t of twins) expect(t.key, "a twin key").toMatch(/^[a-z0-9-]{1,63}$/);
  });

  it("m5-env-01 is manage-dt's custom-adapter twin: the M5 model with the Historized contents and system, its envelope and two routes", () => {
    expect(spec?.["@type"]).toBe("Interface");
    // manage-dt overwrites the spec's @id with the model name; the file carries it already.
    expect(spec?.["@id"]).toBe(field(model, "specUri"));
    const historized = (c: DtdlContent) => ([] as string[]).concat(c["@type"]).includes("Historized");
    const contents = spec?.contents ?? [];
    expect(contents.map((c) => c.name).sort()).toEqual(["count", "humidity", "pressure", "qmp_temperature", "sht_temperature", "system"]);
    expect(contents.filter(historized).map((c) => c.name)).toEqual([
      "sht_temperature",
      "qmp_temperature",
      "humidity",
      "pressure",
      "system",
    ]);
    expect(contents.find((c) => c.name === "count")?.schema).toBe("integer");
    expect(envelope?.envelopeMapping?.timeObserved).toBe("$.time");
    expect(routes).toHaveLength(2);
    // The environment route maps every field of the M5 Env-III payload the simulated device sends; the catch-all
    // keeps anything else whole in `system`.
    expect(Object.keys(routes[0]!.payloadMapping ?? {}).sort()).toEqual([
      "$.count",
      "$.humidity",
      "$.pressure",
      "$.qmp_temperature",
      "$.sht_temperature",
    ]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an OCI jq expression (the whole payload)
    expect(routes[1]).toMatchObject({ condition: "*", payloadMapping: { "$.system": "${.}" } });
  });

  it("the environment route matches the endpoint the emulator's simulated device posts to (iot/v1/telemetry)", () => {
    expect(envelope?.referenceEndpoint).toBe("iot/v1/telemetry");
    // endpoint(n) is the n-th segment of the endpoint: the condition must name one the simulator's endpoint has.
    const m = /^\$\{endpoint\((\d)\) == "([^"]+)"\}$/.exec(routes[0]!.condition);
    expect(m, routes[0]!.condition).not.toBeNull();
    expect("iot/v1/telemetry".split("/")[Number(m![1]) - 1]).toBe(m![2]);
  });

  it("its external key is a device the emulator simulates, and its auth id the vault secret whose plaintext is its device secret", () => {
    const simulated = (emuEnv.OCI_EMU_SIMULATE ?? "").split(",").map((s) => s.trim());
    expect(simulated).toContain(field(demo, "externalKey"));
    const authId = field<string>(demo, "authId")!;
    expect(authId).toMatch(/^ocid1\.vaultsecret\./);
    const secrets = vaultSecrets();
    expect(secrets.has(authId), `${authId} in OCI_EMU_VAULT_SECRETS`).toBe(true);
    expect(field(demo, "deviceSecret")).toBe(secrets.get(authId));
  });

  it("publishes the twin's historized data on the bus, in the emulator's seeded IoT domain", () => {
    expect(field(demo, "source")).toEqual({ historized: true });
    // Empty: OCI_IOT_DOMAIN_ID, which must be the domain the emulator seeds.
    expect(field(demo, "iotDomainId") ?? "").toBe("");
    expect(env.OCI_IOT_DOMAIN_ID).toBe(emuEnv.OCI_EMU_DOMAIN_ID);
    expect(env.OCI_IOT_DOMAIN_ID).toMatch(/^ocid1\.iotdomain\./);
  });

  it("reaches the emulator's control plane, data and identity host, and device host over HTTPS by a name its certificate carries", () => {
    expect(emuEnv.OCI_EMU_TLS).toBe("true");
    const names = (emuEnv.OCI_EMU_TLS_HOSTNAMES ?? "").split(",").map((s) => s.trim());
    for (const [setting, port] of [
      ["OCI_IOT_ENDPOINT", "OCI_EMU_CONTROL_PORT"],
      ["OCI_DATA_URL", "OCI_EMU_DATA_PORT"],
      ["OCI_IDENTITY_URL", "OCI_EMU_DATA_PORT"],
      ["OCI_DEVICE_URL", "OCI_EMU_DEVICE_PORT"],
    ] as const) {
      const url = new URL(env[setting]!);
      expect(url.protocol, setting).toBe("https:");
      expect(url.hostname, setting).toBe("oci-emulator");
      expect(names, `${setting}: a name of the emulator's certificate`).toContain(url.hostname);
      expect(url.port, setting).toBe(emuEnv[port]);
      // The control plane's base URL goes without the API version, which the SDK appends.
      expect(url.pathname, setting).toBe("/");
    }
  });

  it("trusts the CA the emulator writes and signs with the API key it registers, both from shared volumes, read-only", () => {
    const ca = mountOf(manager, env.OCI_CA_FILE ?? "")!;
    const written = mountOf(emulator, emuEnv.OCI_EMU_CA_FILE ?? "")!;
    expect(ca.source).toBe(written.source);
    expect(ca.rest).toBe(written.rest);
    expect(ca.readOnly).toBe(true);

    expect(env.OCI_AUTH).toBe("api_key");
    const keyDir = emuEnv.OCI_EMU_API_KEY_DIR!;
    expect(env.OCI_CONFIG_FILE).toBe(`${keyDir}/config`);
    const config = mountOf(manager, env.OCI_CONFIG_FILE!)!;
    const generated = mountOf(emulator, `${keyDir}/config`)!;
    expect(config.source).toBe(generated.source);
    // The config names key.pem by its path in the emulator's container: the volume must be at the same path here.
    expect(manager.volumes).toContain(`${config.source}:${keyDir}:ro`);
    expect(emulator.volumes).toContain(`${config.source}:${keyDir}`);
    for (const volume of [ca.source, config.source]) expect(Object.keys(composeFile.volumes), volume).toContain(volume);
    // Root only to write into the fresh volumes.
    expect(emulator.user).toBe("0:0");
  });

  it("uses the data-access client and user the emulator's identity domain knows", () => {
    for (const name of ["CLIENT_ID", "CLIENT_SECRET", "USERNAME", "PASSWORD"]) {
      expect(env[`OCI_DATA_${name}`], name).toBeTruthy();
      expect(env[`OCI_DATA_${name}`], name).toBe(emuEnv[`OCI_EMU_DATA_${name}`]);
    }
  });

  it("starts once the emulator is healthy, which its admin port tells", () => {
    expect(manager.depends_on?.["oci-emulator"]?.condition).toBe("service_healthy");
    expect(manager.depends_on?.nats).toBeDefined();
    expect(new URL(emuEnv.HEALTHCHECK_URL!).port).toBe(emuEnv.OCI_EMU_ADMIN_PORT);
    expect(emulator.image).toBe("meridian/emulator-oci:dev");
    expect(manager.image).toBe("meridian/oci-twin-manager:dev");
  });

  it("sets only settings oci-twin-manager has, the published development credentials key among them", () => {
    const known = managerSettings();
    for (const name of Object.keys(env).filter((k) => k.startsWith("OCI_"))) expect(known, name).toContain(name);
    const defaultOf = (value: string | undefined) => /^\$\{\w+:-(.*)\}$/.exec(value ?? "")?.[1];
    const development = /DEVELOPMENT_CREDENTIALS_KEY = "([^"]+)"/.exec(read("libs/service-kit/src/sealing.ts"))?.[1];
    expect(development).toBeDefined();
    expect(defaultOf(env.OCI_CREDENTIALS_KEY)).toBe(development);
  });

  it.skipIf(!existsSync(join(ROOT, "emulators/oci/src/main.ts")))(
    "sets only settings the emulator's main.ts reads (skipped while emulators/oci/src/main.ts does not exist)",
    () => {
      const main = read("emulators/oci/src/main.ts");
      for (const name of Object.keys(emuEnv).filter((k) => k.startsWith("OCI_EMU_"))) expect(main, name).toContain(name);
    },
  );

  it("routes OCI's events into the PI emulator, an endpoint omf-sender knows", () => {
    const all = (
      JSON.parse(read("deploy/compose/routes.json")) as {
        routes: Array<{ id: string; source: { platform: string }; sink: { platform: string; target: string } }>;
      }
    ).routes;
    const route = all.find((r) => r.id === "oci-to-pi");
    expect(route?.source).toEqual({ platform: "PLATFORM_OCI_IOT" });
    expect(route?.sink.platform).toBe("PLATFORM_OMF");
    const endpoints = JSON.parse(read("deploy/compose/omf-endpoints.json")) as Array<{ id: string }>;
    expect(endpoints.map((e) => e.id)).toContain(route!.sink.target);
  });

  it("the gateway serves OciTwinManagerService by forwarding to oci-twin-manager's port", () => {
    const url = new URL(composeFile.services.gateway!.environment!.OCI_TWIN_MANAGER_URL!);
    expect(url.hostname).toBe("oci-twin-manager");
    expect(url.port).toBe(env.PORT);
  });

  it("publishes no host port twice (the emulators' ports are remapped on the host)", () => {
    const hostPorts = Object.entries(composeFile.services).flatMap(([name, s]) =>
      (s.ports ?? []).map((p) => ({ name, hostPort: p.split(":").slice(0, -1).join(":") })),
    );
    const seen = new Map<string, string>();
    for (const { name, hostPort } of hostPorts) {
      expect(seen.get(hostPort), `${hostPort}: ${name}`).toBeUndefined();
      seen.set(hostPort, name);
    }
    expect(seen.get("127.0.0.1:8085")).toBe("oci-twin-manager");
  });
});

interface K8sObject {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: Record<string, unknown>;
}
interface Volume {
  name: string;
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  configMap?: { name: string };
  projected?: {
    sources: Array<{
      serviceAccountToken?: { path: string };
      configMap?: { name: string; items?: Array<{ key: string; path: string }> };
      secret?: { name: string };
    }>;
  };
}
interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  containers: Array<{ env?: Array<{ name: string; value?: string }>; volumeMounts?: Array<{ name: string; mountPath: string }> }>;
  volumes?: Volume[];
}
interface NetworkPolicySpec {
  egress?: Array<{ to?: unknown[]; ports?: Array<{ port: number }> }>;
}

describe.each(["deploy/k8s/base", "deploy/k8s/overlays/local"])("kustomize %s: oci-twin-manager", (path) => {
  const objects = render<K8sObject>(path);
  const deployment = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "oci-twin-manager")!;
  const spec = deployment.spec as { replicas: number; strategy: { type: string }; template: { spec: PodSpec } };
  const pod = spec.template.spec;
  const k8sEnv = Object.fromEntries((pod.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
  /** The volume and the path inside it that a file of the container is mounted from. */
  const sourceOf = (file: string) => {
    const mount = pod.containers[0]!.volumeMounts!.find((m) => file.startsWith(`${m.mountPath}/`))!;
    return { volume: pod.volumes!.find((v) => v.name === mount.name)!, path: posix.relative(mount.mountPath, file) };
  };
  const secret = objects.find((o) => o.kind === "Secret" && o.metadata.name.startsWith("oci-twin-manager-secrets"));
  const SECRET_NAME = /^oci-twin-manager-secrets(-[a-z0-9]+)?$/;

  it("runs one instance, replaced rather than rolled, so that no ORDS page is read twice", () => {
    expect(spec.replicas).toBe(1);
    expect(spec.strategy.type).toBe("Recreate");
  });

  it("sets only settings oci-twin-manager has (a *_FILE names a setting's file)", () => {
    const known = managerSettings();
    for (const name of Object.keys(k8sEnv).filter((k) => k.startsWith("OCI_")))
      expect(known.has(name) || known.has(name.replace(/_FILE$/, "")), name).toBe(true);
  });

  it("signs with OKE workload identity: its service account's token and the cluster CA projected where the SDK reads them", () => {
    expect(k8sEnv.OCI_AUTH).toBe("workload_identity");
    expect(pod.serviceAccountName).toBe("oci-twin-manager");
    expect(objects.some((o) => o.kind === "ServiceAccount" && o.metadata.name === "oci-twin-manager")).toBe(true);
    // oci-common's OkeWorkloadIdentityAuthenticationDetailsProvider: these two files, and the proxymux port by environment.
    const token = sourceOf("/var/run/secrets/kubernetes.io/serviceaccount/token");
    const ca = sourceOf("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt");
    expect(token.volume.projected?.sources.find((s) => s.serviceAccountToken)?.serviceAccountToken?.path).toBe(token.path);
    expect(ca.volume.projected?.sources.find((s) => s.configMap)?.configMap).toEqual({
      name: "kube-root-ca.crt",
      items: [{ key: "ca.crt", path: ca.path }],
    });
    const proxymux = Number(k8sEnv.KUBERNETES_SERVICE_PORT_PROXYMUX);
    expect(proxymux).toBeGreaterThan(0);
    const policy = objects.find((o) => o.kind === "NetworkPolicy" && o.metadata.name === "oci-twin-manager")!.spec as NetworkPolicySpec;
    const open = (policy.egress ?? []).filter((r) => !r.to).flatMap((r) => (r.ports ?? []).map((p) => p.port));
    expect(open.sort((a, b) => a - b)).toEqual([443, proxymux]);
  });

  it("reads the data-access credentials and the credentials key as files from oci-twin-manager-secrets, each group apart", () => {
    for (const name of ["OCI_DATA_CLIENT_SECRET", "OCI_DATA_PASSWORD", "OCI_CREDENTIALS_KEY", "OCI_DATA_CLIENT_ID", "OCI_DATA_USERNAME"])
      expect(k8sEnv[name], name).toBeUndefined();
    const keyFile = sourceOf(k8sEnv.OCI_CREDENTIALS_KEY_FILE!);
    expect(keyFile.volume.secret?.secretName).toMatch(SECRET_NAME);
    expect(keyFile.volume.secret?.items).toEqual([{ key: "credentials-key", path: keyFile.path }]);
    for (const name of ["OCI_DATA_CLIENT_ID", "OCI_DATA_CLIENT_SECRET", "OCI_DATA_USERNAME", "OCI_DATA_PASSWORD"]) {
      const file = sourceOf(k8sEnv[`${name}_FILE`]!);
      expect(file.volume.secret?.secretName, name).toMatch(SECRET_NAME);
      const item = file.volume.secret?.items?.find((i) => i.path === file.path);
      expect(item, name).toBeDefined();
      expect(item!.key, name).not.toBe("credentials-key");
      // The base ships no Secret; the local overlay generates one that must hold every key mounted.
      if (secret) expect(secret.data?.[item!.key], `${name}: ${item!.key} in ${secret.metadata.name}`).toBeTruthy();
    }
    if (secret) expect(secret.data?.["credentials-key"]).toBeTruthy();
  });

  it("reconciles the twins of a ConfigMap that carries no device secret", () => {
    const { volume, path: file } = sourceOf(k8sEnv.OCI_TWINS_FILE!);
    const configMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === volume.configMap?.name)!;
    const twins = (JSON.parse(configMap.data![file]!) as { twins: Array<Record<string, unknown>> }).twins;
    expect(Array.isArray(twins)).toBe(true);
    for (const t of twins) expect(field(t, "deviceSecret"), String(t.key)).toBeUndefined();
  });

  it("the gateway forwards OciTwinManagerService to the Service's port", () => {
    const gateway = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "gateway")!;
    const gatewayEnv = (gateway.spec as { template: { spec: PodSpec } }).template.spec.containers[0]!.env ?? [];
    const url = new URL(gatewayEnv.find((e) => e.name === "OCI_TWIN_MANAGER_URL")!.value!);
    expect(url.hostname).toBe("oci-twin-manager");
    const service = objects.find((o) => o.kind === "Service" && o.metadata.name === "oci-twin-manager")!;
    expect((service.spec as { ports: Array<{ port: number }> }).ports[0]!.port).toBe(Number(url.port));
    expect(k8sEnv.PORT).toBe(url.port);
  });
});
