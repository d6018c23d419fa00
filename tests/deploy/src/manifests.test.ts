import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
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
  const out = execFileSync("kubectl", ["kustomize", join(ROOT, path)], { encoding: "utf8" });
  return parseAllDocuments(out).map((d) => d.toJSON() as K8sObject);
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
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(["gateway", "idigi-listener", "omf-sender"]);
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
