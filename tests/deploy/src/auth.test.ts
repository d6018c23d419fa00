/**
 * Authentication as deployed: every service reads the same identities file from the meridian-auth Secret, the base
 * carries no key and no open default, and the local overlay's published development key is the one its file holds.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT, render } from "./render.js";

interface Container {
  env?: Array<{ name: string; value?: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface K8sObject {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: { template?: { spec: { containers: Container[]; volumes?: Array<{ name: string; secret?: { secretName: string } }> } } };
}

const SERVICES = ["gateway", "omf-sender", "idigi-listener", "omnia-reader", "iotc-bridge", "oci-twin-manager"];

describe.each(["deploy/k8s/base", "deploy/k8s/overlays/local", "deploy/k8s/overlays/local-tls"])("%s", (path) => {
  const objects = render<K8sObject>(path);

  it("every service reads its identities from the meridian-auth Secret, and nothing turns authentication off", () => {
    for (const name of SERVICES) {
      const deployment = objects.find((o) => o.kind === "Deployment" && o.metadata.name === name)!;
      const pod = deployment.spec!.template!.spec;
      const container = pod.containers[0]!;
      const file = container.env?.find((e) => e.name === "AUTH_IDENTITIES_FILE")?.value;
      expect(file, name).toBeDefined();
      const mount = container.volumeMounts!.find((m) => file!.startsWith(`${m.mountPath}/`))!;
      const volume = pod.volumes!.find((v) => v.name === mount.name)!;
      expect(volume.secret?.secretName, name).toMatch(/^meridian-auth(-[a-z0-9]+)?$/);
      expect(
        container.env?.find((e) => e.name === "AUTH_MODE"),
        name,
      ).toBeUndefined();
    }
  });
});

describe("API keys in the manifests", () => {
  it("the base holds no key: the operator creates the meridian-auth Secret", () => {
    expect(render<K8sObject>("deploy/k8s/base").filter((o) => o.kind === "Secret")).toEqual([]);
  });

  it("the local overlay's published development key is the one its identities file holds (hashed)", () => {
    const kustomization = readFileSync(join(ROOT, "deploy/k8s/overlays/local/kustomization.yaml"), "utf8");
    const key = /(mrd_[0-9a-f]{12}_[A-Za-z0-9_-]{43})/.exec(kustomization)?.[1];
    expect(key).toBeDefined();
    const secret = render<K8sObject>("deploy/k8s/overlays/local").find(
      (o) => o.kind === "Secret" && o.metadata.name.startsWith("meridian-auth"),
    )!;
    const identities = JSON.parse(Buffer.from(secret.data!["identities.json"]!, "base64").toString()) as {
      apiKeys: Array<{ id: string; sha256: string; roles: string[] }>;
    };
    const entry = identities.apiKeys.find((k) => k.id === key!.slice(4, 16))!;
    expect(entry.sha256).toBe(createHash("sha256").update(key!).digest("hex"));
    expect(JSON.stringify(identities)).not.toContain(key!.slice(17));
  });

  it("docker-compose.yml turns no authentication off and gives every service the identities file", () => {
    const compose = parse(readFileSync(join(ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
      services: Record<string, { environment?: Record<string, string>; depends_on?: Record<string, { condition: string }> }>;
    };
    for (const name of SERVICES) {
      const service = compose.services[name]!;
      expect(service.environment?.AUTH_MODE, name).toBeUndefined();
      expect(service.environment?.AUTH_IDENTITIES_FILE, name).toBe("/run/meridian/auth/identities.json");
      expect(service.depends_on?.["auth-init"]?.condition, name).toBe("service_completed_successfully");
    }
  });
});
