/**
 * The TLS overlay (components/tls through overlays/local-tls), rendered with kustomize: every API port gets its
 * certificate from a cert-manager Secret, no probe is one the kubelet cannot run against TLS, and the gateway reaches
 * its backends by names their certificates carry. Built-in kinds are validated against the Kubernetes schemas;
 * cert-manager's are checked by hand (kubernetes-models has no CRDs).
 */
import { posix } from "node:path";
import { describe, expect, it } from "vitest";
import { render as renderObjects } from "./render.js";

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
}

interface Probe {
  grpc?: unknown;
  httpGet?: { path?: string; port?: string | number; scheme?: string };
  exec?: { command?: string[] };
}
interface Container {
  name: string;
  env?: Array<{ name: string; value?: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
}
interface PodSpec {
  securityContext?: { fsGroup?: number; runAsUser?: number };
  containers: Container[];
  volumes?: Array<{ name: string; secret?: { secretName?: string; defaultMode?: number } }>;
}
interface CertificateSpec {
  secretName: string;
  issuerRef: { name: string; kind: string };
  dnsNames?: string[];
  usages?: string[];
  isCA?: boolean;
}

const SERVICES = ["gateway", "idigi-listener", "iotc-bridge", "oci-twin-manager", "omf-sender", "omnia-reader"];

function render(path: string): K8sObject[] {
  return renderObjects<K8sObject>(path);
}

describe("kustomize deploy/k8s/overlays/local-tls", () => {
  const objects = render("deploy/k8s/overlays/local-tls");
  const deployments = objects.filter((o) => o.kind === "Deployment");
  const pod = (name: string) => (deployments.find((d) => d.metadata.name === name)!.spec as { template: { spec: PodSpec } }).template.spec;
  const env = (name: string) => Object.fromEntries((pod(name).containers[0]!.env ?? []).map((e) => [e.name, e.value]));
  const certificates = objects.filter((o) => o.kind === "Certificate");
  const certificateFor = (secretName: string) =>
    certificates.map((c) => c.spec as unknown as CertificateSpec).find((c) => c.secretName === secretName);

  it("renders built-in objects that validate against the Kubernetes schemas, and the cert-manager objects it needs", async () => {
    for (const o of objects.filter((x) => !x.apiVersion.startsWith("cert-manager.io/"))) {
      const module = await import(`kubernetes-models/${o.apiVersion}`);
      expect(() => new module[o.kind](o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
    }
    expect(deployments.map((d) => d.metadata.name).sort()).toEqual(SERVICES);
    const issuers = objects.filter((o) => o.kind === "Issuer").map((o) => o.metadata.name);
    expect(issuers).toContain("meridian-ca");
    for (const c of certificates) {
      expect(c.metadata.namespace, c.metadata.name).toBe("meridian");
      expect(issuers, c.metadata.name).toContain((c.spec as unknown as CertificateSpec).issuerRef.name);
    }
  });

  it("every service serves TLS from its own cert-manager Secret, mounted read-only and readable by its user's group only", () => {
    for (const name of SERVICES) {
      const spec = pod(name);
      const e = env(name);
      expect(e.TLS_CERT_FILE, name).toBeDefined();
      expect(e.TLS_KEY_FILE, name).toBeDefined();
      const dir = posix.dirname(e.TLS_CERT_FILE!);
      expect(posix.dirname(e.TLS_KEY_FILE!)).toBe(dir);
      const mount = spec.containers[0]!.volumeMounts?.find((m) => m.mountPath === dir);
      expect(mount?.readOnly, `${name}: ${dir} mounted read-only`).toBe(true);
      const volume = spec.volumes?.find((v) => v.name === mount!.name);
      expect(volume?.secret?.secretName, name).toBe(`${name}-tls`);
      expect(volume?.secret?.defaultMode, name).toBe(0o440);
      expect(spec.securityContext?.fsGroup, name).toBe(spec.securityContext?.runAsUser);
      // cert-manager writes tls.crt, tls.key and ca.crt into the Secret.
      expect(posix.basename(e.TLS_CERT_FILE!)).toBe("tls.crt");
      expect(posix.basename(e.TLS_KEY_FILE!)).toBe("tls.key");
      expect(certificateFor(`${name}-tls`)?.dnsNames, name).toContain(name);
    }
  });

  it("no probe is a gRPC one (the kubelet's cannot do TLS); a port that requires client certificates is probed by the healthcheck, which presents one", () => {
    for (const name of SERVICES) {
      const e = env(name);
      const c = pod(name).containers[0]!;
      for (const [kind, probe] of [
        ["readiness", c.readinessProbe],
        ["liveness", c.livenessProbe],
      ] as const) {
        expect(probe?.grpc, `${name} ${kind}`).toBeUndefined();
        if (e.TLS_CLIENT_AUTH === "require") {
          expect(probe?.exec?.command?.slice(0, 2), `${name} ${kind}`).toEqual(["node", "/app/scripts/healthcheck.mjs"]);
          // The healthcheck presents TLS_CERT_FILE: it must be issued for client auth.
          expect(certificateFor(`${name}-tls`)?.usages, name).toContain("client auth");
        } else {
          expect(probe?.httpGet?.scheme, `${name} ${kind}`).toBe("HTTPS");
        }
      }
      expect(c.readinessProbe?.httpGet?.path ?? c.readinessProbe?.exec?.command?.[2], name).toBe("/readyz");
    }
  });

  it("the backends require the gateway's certificate; the gateway calls them over https:// by names their certificates carry", () => {
    for (const backend of ["omf-sender", "idigi-listener", "omnia-reader", "iotc-bridge", "oci-twin-manager"]) {
      expect(env(backend).TLS_CLIENT_AUTH, backend).toBe("require");
      expect(env(backend).TLS_CLIENT_CA_FILE, backend).toBeDefined();
    }
    const gw = env("gateway");
    expect(gw.TLS_CLIENT_AUTH).toBeUndefined(); // callers authenticate by credential
    for (const [setting, backend] of [
      ["OMF_SENDER_URL", "omf-sender"],
      ["IDIGI_LISTENER_URL", "idigi-listener"],
      ["OMNIA_READER_URL", "omnia-reader"],
      ["IOTC_BRIDGE_URL", "iotc-bridge"],
      ["OCI_TWIN_MANAGER_URL", "oci-twin-manager"],
    ] as const) {
      const url = new URL(gw[setting]!);
      expect(url.protocol, setting).toBe("https:");
      expect(certificateFor(`${backend}-tls`)?.dnsNames, setting).toContain(url.hostname);
    }
    expect(gw.BACKEND_CA_FILE).toBeDefined();
    expect(gw.BACKEND_CERT_FILE).toBe(gw.TLS_CERT_FILE);
    expect(gw.BACKEND_KEY_FILE).toBe(gw.TLS_KEY_FILE);
    expect(certificateFor("gateway-tls")?.usages).toContain("client auth");
  });

  it("Services no longer announce h2c", () => {
    for (const s of objects.filter((o) => o.kind === "Service" && SERVICES.includes(o.metadata.name))) {
      const ports = (s.spec as { ports: Array<{ appProtocol?: string }> }).ports;
      expect(ports[0]?.appProtocol, s.metadata.name).toBe("https");
    }
  });
});
