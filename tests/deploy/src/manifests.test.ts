import { describe, expect, it } from "vitest";
import { render as renderObjects } from "./render.js";

const OVERLAYS = ["deploy/k8s/base", "deploy/k8s/overlays/local"];

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

interface ContainerSpec {
  readinessProbe?: { grpc?: { port?: number } };
  resources?: { requests?: { memory?: string } };
  env?: Array<{ name: string; value?: string }>;
}

function render(path: string): K8sObject[] {
  return renderObjects<K8sObject>(path);
}

/** The kubernetes-models class for apiVersion + kind, e.g. apps/v1 Deployment. */
async function modelFor(apiVersion: string, kind: string): Promise<new (o: unknown) => { validate(): void }> {
  const module = await import(`kubernetes-models/${apiVersion}`);
  const model = module[kind];
  if (!model) throw new Error(`no schema for ${apiVersion} ${kind}`);
  return model;
}

describe.each(OVERLAYS)("kustomize %s", (path) => {
  const objects = render(path);

  it("renders objects that all validate against the Kubernetes schemas", async () => {
    expect(objects.length).toBeGreaterThan(10);
    for (const o of objects) {
      const Model = await modelFor(o.apiVersion, o.kind);
      expect(() => new Model(o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
    }
  });

  it("runs NATS as a 3-node JetStream StatefulSet with a disruption budget", () => {
    const nats = objects.find((o) => o.kind === "StatefulSet" && o.metadata.name === "nats");
    expect(nats?.spec?.replicas).toBe(3);
    expect(objects.some((o) => o.kind === "PodDisruptionBudget" && o.metadata.name === "nats")).toBe(true);
  });

  it("gives every Deployment gRPC readiness, resources, a PDB and no secret in plain env", () => {
    const deployments = objects.filter((o) => o.kind === "Deployment");
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual([
      "gateway",
      "idigi-listener",
      "iotc-bridge",
      "oci-twin-manager",
      "omf-sender",
      "omnia-reader",
    ]);
    for (const d of deployments) {
      const container = (d.spec as { template: { spec: { containers: ContainerSpec[] } } }).template.spec.containers[0]!;
      expect(container.readinessProbe?.grpc?.port, d.metadata.name).toBeGreaterThan(0);
      expect(container.resources?.requests?.memory, d.metadata.name).toBeDefined();
      for (const e of container.env ?? []) {
        if (/PASSWORD$|SECRET$|TOKEN$|_KEY$/.test(e.name)) expect(e.value, `${d.metadata.name} ${e.name}`).toBeUndefined();
      }
      expect(objects.some((o) => o.kind === "PodDisruptionBudget" && o.metadata.name === d.metadata.name)).toBe(true);
    }
  });
});

it("the base ships no Secret (values come from the cluster), the local overlay generates development ones", () => {
  expect(render("deploy/k8s/base").some((o) => o.kind === "Secret")).toBe(false);
  const local = render("deploy/k8s/overlays/local");
  expect(local.some((o) => o.kind === "Secret")).toBe(true);
  expect(local.every((o) => o.kind === "Namespace" || o.metadata.namespace === "meridian")).toBe(true);
});

interface PodTemplate {
  automountServiceAccountToken?: boolean;
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type?: string } };
  containers: Array<{
    name: string;
    env?: Array<{ name: string; value?: string }>;
    volumeMounts?: Array<{ name: string; mountPath: string }>;
    lifecycle?: { preStop?: { exec?: { command?: string[] } } };
    securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } };
  }>;
  volumes?: Array<{ name: string; secret?: unknown; emptyDir?: unknown }>;
}

interface PolicyPeer {
  podSelector?: { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; values: string[] }> };
}
interface NetworkPolicySpec {
  podSelector: { matchLabels?: Record<string, string> };
  policyTypes: string[];
  ingress?: Array<{ from?: PolicyPeer[]; ports?: Array<{ port: number }> }>;
  egress?: Array<{ to?: PolicyPeer[]; ports?: Array<{ port: number }> }>;
}

describe("hardening (local overlay, as a cluster would run it)", () => {
  const objects = render("deploy/k8s/overlays/local");
  const workloads = objects.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet");
  const podOf = (o: K8sObject) => (o.spec as { template: { spec: PodTemplate } }).template.spec;
  const policies = objects.filter((o) => o.kind === "NetworkPolicy");
  const policy = (name: string) => policies.find((p) => p.metadata.name === name)?.spec as NetworkPolicySpec | undefined;
  const peers = (rules: Array<{ from?: PolicyPeer[]; to?: PolicyPeer[] }> | undefined) =>
    (rules ?? []).flatMap((r) => [...(r.from ?? []), ...(r.to ?? [])]).map((p) => p.podSelector?.matchLabels?.["app.kubernetes.io/name"]);

  it("labels the namespace for the restricted Pod Security Standard", () => {
    const ns = objects.find((o) => o.kind === "Namespace") as { metadata: { labels?: Record<string, string> } } | undefined;
    expect(ns?.metadata.labels?.["pod-security.kubernetes.io/enforce"]).toBe("restricted");
  });

  it("every pod meets the restricted standard and mounts no service account token", () => {
    expect(workloads.map((w) => w.metadata.name).sort()).toEqual([
      "gateway",
      "idigi-listener",
      "iotc-bridge",
      "nats",
      "oci-twin-manager",
      "omf-sender",
      "omnia-reader",
    ]);
    for (const w of workloads) {
      const pod = podOf(w);
      expect(pod.automountServiceAccountToken, w.metadata.name).toBe(false);
      expect(pod.securityContext?.runAsNonRoot, w.metadata.name).toBe(true);
      expect(pod.securityContext?.seccompProfile?.type, w.metadata.name).toBe("RuntimeDefault");
      for (const c of pod.containers) {
        expect(c.securityContext?.allowPrivilegeEscalation, `${w.metadata.name}/${c.name}`).toBe(false);
        expect(c.securityContext?.readOnlyRootFilesystem, `${w.metadata.name}/${c.name}`).toBe(true);
        expect(c.securityContext?.capabilities?.drop, `${w.metadata.name}/${c.name}`).toContain("ALL");
      }
    }
  });

  it("NATS lame-duck preStop can find its process: the pid file it signals is the one nats.conf writes, on a writable volume", () => {
    const nats = podOf(workloads.find((w) => w.metadata.name === "nats")!);
    const command = nats.containers[0]?.lifecycle?.preStop?.exec?.command ?? [];
    const pidFile = command.find((a) => a.startsWith("ldm="))?.slice("ldm=".length);
    expect(pidFile).toBeDefined();
    const conf = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("nats-config")) as
      | { data: Record<string, string> }
      | undefined;
    expect(conf?.data["nats.conf"]).toContain(`pid_file: "${pidFile}"`);
    const dir = pidFile!.slice(0, pidFile!.lastIndexOf("/"));
    const mount = nats.containers[0]?.volumeMounts?.find((m) => m.mountPath === dir);
    expect(mount, `a volume at ${dir}`).toBeDefined();
    expect(nats.volumes?.find((v) => v.name === mount!.name)?.emptyDir).toBeDefined();
  });

  it("the OMF credentials key is a mounted Secret file, never an environment value", () => {
    const omf = podOf(workloads.find((w) => w.metadata.name === "omf-sender")!);
    const env = omf.containers[0]?.env ?? [];
    expect(env.some((e) => e.name === "OMF_CREDENTIALS_KEY")).toBe(false);
    const path = env.find((e) => e.name === "OMF_CREDENTIALS_KEY_FILE")?.value;
    expect(path).toBeDefined();
    const mount = omf.containers[0]?.volumeMounts?.find((m) => path!.startsWith(`${m.mountPath}/`));
    expect(omf.volumes?.find((v) => v.name === mount?.name)?.secret, "mounted from a Secret").toBeDefined();
  });

  it("denies all traffic by default, then allows what each part needs and no more", () => {
    const deny = policy("default-deny");
    expect(deny?.podSelector).toEqual({});
    expect(deny?.policyTypes.sort()).toEqual(["Egress", "Ingress"]);
    expect(deny?.ingress ?? []).toEqual([]);
    expect(deny?.egress ?? []).toEqual([]);
    for (const w of workloads) {
      expect(
        policies.some(
          (p) => (p.spec as unknown as NetworkPolicySpec).podSelector.matchLabels?.["app.kubernetes.io/name"] === w.metadata.name,
        ),
        `a policy for ${w.metadata.name}`,
      ).toBe(true);
    }
    // Only the gateway takes calls from outside; the platform services take them from the gateway alone.
    expect(policy("gateway")?.ingress?.[0]?.from).toBeUndefined();
    expect(peers(policy("omf-sender")?.ingress)).toEqual(["gateway"]);
    expect(peers(policy("idigi-listener")?.ingress)).toEqual(["gateway"]);
    expect(peers(policy("omnia-reader")?.ingress)).toEqual(["gateway"]);
    expect(peers(policy("iotc-bridge")?.ingress)).toEqual(["gateway"]);
    expect(peers(policy("oci-twin-manager")?.ingress)).toEqual(["gateway"]);
    // NATS clients are Meridian's services only.
    const natsClients = policy("nats")?.ingress?.[0]?.from?.[0]?.podSelector?.matchExpressions?.[0]?.values ?? [];
    expect(natsClients.sort()).toEqual(["gateway", "idigi-listener", "iotc-bridge", "oci-twin-manager", "omf-sender", "omnia-reader"]);
    expect(peers(policy("gateway")?.egress).sort()).toEqual([
      "idigi-listener",
      "iotc-bridge",
      "nats",
      "oci-twin-manager",
      "omf-sender",
      "omnia-reader",
    ]);
  });
});
