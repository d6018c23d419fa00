/**
 * NATS as deployed: a user per service with least-privilege permissions (one permission set, deploy/compose/
 * nats-users.conf, copied to the Kubernetes base), passwords from the deployments' secrets, TLS in Kubernetes.
 * Reads the compose file and the rendered Kubernetes manifests; nats-server itself checks that the configurations load.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ROOT, render as renderObjects } from "./render.js";

const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const SERVICES = ["gateway", "idigi-listener", "iotc-bridge", "oci-twin-manager", "omf-sender", "omnia-reader"] as const;

interface NatsUser {
  user: string;
  /** The environment variable nats-server reads the password from. */
  passwordVar?: string;
  publish: string[];
  subscribe: string[];
}

/** The users of a nats-users.conf: enough of the NATS configuration syntax for the shape that file has. */
function parseUsers(text: string): NatsUser[] {
  const code = text
    .split("\n")
    .map((l) => l.replace(/#.*$/, ""))
    .join("\n");
  return code
    .split(/\buser:\s*/)
    .slice(1)
    .map((block) => {
      const allow = (section: string) => {
        const m = new RegExp(`${section}:\\s*\\{\\s*allow:\\s*\\[([^\\]]*)\\]`).exec(block);
        return m ? [...m[1]!.matchAll(/"([^"]+)"/g)].map((x) => x[1]!) : [];
      };
      return {
        user: /^[\w-]+/.exec(block)![0],
        passwordVar: /password:\s*\$(\w+)/.exec(block)?.[1],
        publish: allow("publish"),
        subscribe: allow("subscribe"),
      };
    });
}

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}
interface Container {
  name: string;
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface Volume {
  name: string;
  secret?: { secretName: string };
  projected?: { sources: Array<{ secret?: { name: string; items?: Array<{ key: string; path: string }> } }> };
}
interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
}

function render(path: string): K8sObject[] {
  return renderObjects<K8sObject>(path);
}

/** The KV buckets a service's code names (`export const X_BUCKET = "name"`), by service. */
function serviceBuckets(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const service of SERVICES) {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir)) {
        const path = join(dir, entry);
        if (statSync(path).isDirectory()) walk(path);
        else if (path.endsWith(".ts") && !path.endsWith(".test.ts")) files.push(path);
      }
    };
    walk(join(ROOT, "services", service, "src"));
    out[service] = files.flatMap((f) => [...readFileSync(f, "utf8").matchAll(/export const \w+_BUCKET = "([\w-]+)"/g)].map((m) => m[1]!));
  }
  return out;
}

const composeUsersText = read("deploy/compose/nats-users.conf");
const users = parseUsers(composeUsersText);
const userOf = (name: string) => users.find((u) => u.user === name);

describe("NATS users and permissions (deploy/compose/nats-users.conf)", () => {
  it("is the one permission set: the Kubernetes base's copy is identical", () => {
    expect(read("deploy/k8s/base/nats-users.conf"), "copy deploy/compose/nats-users.conf to deploy/k8s/base/").toBe(composeUsersText);
  });

  it("has a user for every service, and nothing else", () => {
    expect(users.map((u) => u.user).sort()).toEqual([...SERVICES]);
    for (const u of users) expect(u.passwordVar, u.user).toMatch(/^NATS_[A-Z_]+_PASSWORD$/);
  });

  it("lets each service subscribe to its own reply inbox only, and iotc-bridge to IoT Central's command responses besides", () => {
    for (const service of SERVICES) {
      // A command's holder waits for the response a WatchCommands caller sends through RespondCommand (core NATS).
      const extra = service === "iotc-bridge" ? ["command-response.v1.iotc.>"] : [];
      expect(userOf(service)?.subscribe, service).toEqual([`_INBOX.${service}.>`, ...extra]);
    }
  });

  it("gives no user '>' or a whole root to publish to, nor any delete or purge of a stream but the gateway's of dead letters and omf-sender's of its own state bucket", () => {
    // DeadLetterService: an operator purges dead letters and replays them onto their original platform's subject, through
    // the gateway only; the telemetry and cloud-to-device streams stay out of every user's reach.
    const gatewayOnly = ["telemetry.v1.>", "$JS.API.STREAM.PURGE.DEADLETTER", "$JS.API.STREAM.MSG.DELETE.DEADLETTER"];
    // omf-sender's delivery ledger purges its acknowledged keys from the bucket it owns (a KV delete would leave a marker
    // per key, one per send): its own state, nothing another service or the telemetry depends on.
    const omfSenderOnly = ["$JS.API.STREAM.PURGE.KV_omf_state"];
    const tooBroad = [
      ">",
      "*.>",
      "telemetry.>",
      "telemetry.v1.>",
      "telemetry.v1.*.>",
      "deadletter.>",
      "deadletter.v1.>",
      "command.>",
      "command.v1.>",
      "property.>",
      "property.v1.>",
      "command-response.>",
      "command-response.v1.>",
      "$KV.>",
      "$KV.*.>",
    ];
    for (const u of users) {
      for (const subject of u.publish) {
        if (u.user === "gateway" && gatewayOnly.includes(subject)) continue;
        if (u.user === "omf-sender" && omfSenderOnly.includes(subject)) continue;
        expect(tooBroad, `${u.user}: ${subject}`).not.toContain(subject);
        expect(subject, u.user).not.toMatch(/^\$JS\.(>|API\.>|API\.STREAM\.>|API\.CONSUMER\.>|ACK\.>)$/);
        expect(subject, u.user).not.toMatch(/STREAM\.(DELETE|PURGE|MSG\.DELETE)|^\$JS\.API\.ACCOUNT|^\$SYS/);
      }
    }
  });

  it("lets each source publish only its own platform's telemetry, and the sink none", () => {
    const telemetry = (service: string) => userOf(service)!.publish.filter((s) => s.startsWith("telemetry."));
    // The gateway publishes what API clients send (telemetry.v1.api) and replays dead letters on their original subjects.
    expect(telemetry("gateway")).toEqual(["telemetry.v1.>"]);
    expect(telemetry("idigi-listener")).toEqual(["telemetry.v1.idigi.>"]);
    expect(telemetry("omf-sender")).toEqual([]);
    expect(telemetry("omnia-reader")).toEqual(["telemetry.v1.omnia.>"]);
    // iotc-bridge is a sink of telemetry; what it publishes from IoT Central are commands and property changes.
    expect(telemetry("iotc-bridge")).toEqual([]);
    // oci-twin-manager is a source (the twins' ORDS data) and a sink (routes into twins).
    expect(telemetry("oci-twin-manager")).toEqual(["telemetry.v1.oci.>"]);
  });

  it("lets only the gateway change the streams' settings, and only the sink and the gateway (a route purge) delete consumers", () => {
    for (const u of users) {
      const updates = u.publish.filter((s) => s.startsWith("$JS.API.STREAM.UPDATE."));
      expect(updates, u.user).toEqual(
        u.user === "gateway"
          ? ["$JS.API.STREAM.UPDATE.TELEMETRY", "$JS.API.STREAM.UPDATE.DEADLETTER", "$JS.API.STREAM.UPDATE.CLOUD_TO_DEVICE"]
          : [],
      );
      const deletes = u.publish.filter((s) => s.includes(".DELETE."));
      expect(deletes, u.user).toEqual(
        u.user === "idigi-listener"
          ? []
          : u.user === "gateway"
            ? ["$JS.API.CONSUMER.DELETE.TELEMETRY.*", "$JS.API.STREAM.MSG.DELETE.DEADLETTER", "$JS.API.CONSUMER.DELETE.DEADLETTER.*"]
            : ["$JS.API.CONSUMER.DELETE.TELEMETRY.*"],
      );
    }
  });

  it("lets each KV bucket be written by the service that owns it only, and each status report by its own service", () => {
    const owned = serviceBuckets();
    expect(owned["omf-sender"]?.length, "omf-sender's buckets found in its source").toBeGreaterThan(0);
    expect(owned["idigi-listener"]?.length, "idigi-listener's buckets found in its source").toBeGreaterThan(0);
    expect(owned["omnia-reader"]?.length, "omnia-reader's buckets found in its source").toBeGreaterThan(0);
    expect(owned["iotc-bridge"]?.length, "iotc-bridge's buckets found in its source").toBeGreaterThan(0);
    expect(owned["oci-twin-manager"]?.length, "oci-twin-manager's buckets found in its source").toBeGreaterThan(0);
    // The mesh's buckets (libs/bus mesh.ts): routes are the gateway's.
    owned.gateway = [...(owned.gateway ?? []), "routes"];
    for (const [owner, buckets] of Object.entries(owned)) {
      for (const bucket of buckets) {
        for (const u of users) {
          const writes = u.publish.some((s) => s === `$KV.${bucket}.>` || s === "$KV.>" || s.startsWith(`$KV.${bucket}.`));
          expect(writes, `${u.user} writing ${bucket}`).toBe(u.user === owner);
        }
      }
    }
    for (const u of users) {
      expect(
        u.publish.filter((s) => s.startsWith("$KV.service_status.")),
        u.user,
      ).toEqual([`$KV.service_status.${u.user}.>`]);
    }
  });

  it("lets a source dead-letter on its own subject (omf-sender's consumers are named per route: the root)", () => {
    expect(userOf("idigi-listener")!.publish.filter((s) => s.startsWith("deadletter."))).toEqual(["deadletter.v1.idigi-listener"]);
    expect(userOf("omf-sender")!.publish.filter((s) => s.startsWith("deadletter."))).toEqual(["deadletter.v1.*"]);
    // omnia-reader is a sink too: its route consumers' dead letters.
    expect(userOf("omnia-reader")!.publish.filter((s) => s.startsWith("deadletter."))).toEqual(["deadletter.v1.*"]);
    // So is iotc-bridge: what IoT Central can never accept is dead-lettered under the route's consumer.
    expect(userOf("iotc-bridge")!.publish.filter((s) => s.startsWith("deadletter."))).toEqual(["deadletter.v1.*"]);
    // And oci-twin-manager: what OCI can never accept from a route into a twin.
    expect(userOf("oci-twin-manager")!.publish.filter((s) => s.startsWith("deadletter."))).toEqual(["deadletter.v1.*"]);
    expect(userOf("gateway")!.publish.filter((s) => s.startsWith("deadletter."))).toEqual([]);
  });

  it("loads in nats-server as docker compose runs it (a password variable it cannot find stops it)", () => {
    const env = Object.fromEntries(users.map((u) => [u.passwordVar!, "x"]));
    const check = (extra: Record<string, string>) =>
      execFileSync("nats-server", ["-c", join(ROOT, "deploy/compose/nats.conf"), "-t"], {
        env: { ...process.env, ...extra },
        encoding: "utf8",
      });
    expect(() => check(env)).not.toThrow();
    expect(() => check({ ...env, NATS_GATEWAY_PASSWORD: "" })).not.toThrow();
    const missing = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.endsWith("_PASSWORD")));
    expect(() =>
      execFileSync("nats-server", ["-c", join(ROOT, "deploy/compose/nats.conf"), "-t"], { env: missing, encoding: "utf8", stdio: "pipe" }),
    ).toThrow();
  });
});

describe("docker-compose.yml", () => {
  const compose = parse(read("docker-compose.yml")) as {
    services: Record<string, { command?: string[]; environment?: Record<string, string>; volumes?: string[] }>;
  };

  it("runs NATS with the compose configuration and every user's password", () => {
    const nats = compose.services.nats!;
    expect(nats.command).toEqual(["--config", "/etc/nats/nats.conf"]);
    expect(nats.volumes).toEqual(
      expect.arrayContaining([
        "./deploy/compose/nats.conf:/etc/nats/nats.conf:ro",
        "./deploy/compose/nats-users.conf:/etc/nats/nats-users.conf:ro",
      ]),
    );
    for (const u of users) expect(nats.environment?.[u.passwordVar!], u.user).toBeTruthy();
  });

  it("logs every service in as its own user with the password NATS has for it", () => {
    const nats = compose.services.nats!;
    for (const service of SERVICES) {
      const env = compose.services[service]!.environment!;
      expect(env.NATS_USER, service).toBe(service);
      expect(env.NATS_PASSWORD, service).toBe(nats.environment?.[userOf(service)!.passwordVar!]);
    }
  });
});

describe("NATS in Kubernetes (overlays/local, as a cluster runs it)", () => {
  const objects = render("deploy/k8s/overlays/local");
  const podOf = (kind: string, name: string) =>
    (objects.find((o) => o.kind === kind && o.metadata.name === name)!.spec as { template: { spec: PodSpec } }).template.spec;
  const secretName = (prefix: string) =>
    objects.find((o) => o.kind === "Secret" && o.metadata.name.startsWith(`${prefix}-`))!.metadata.name;
  const natsPod = podOf("StatefulSet", "nats");
  const natsConf = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("nats-config"))!.data!;

  it("configures NATS from nats.conf and the copy of the users, with every password from the meridian-nats Secret", () => {
    expect(natsConf["nats-users.conf"]).toBe(composeUsersText);
    expect(natsConf["nats.conf"]).toContain("include ./nats-users.conf");
    const env = natsPod.containers[0]!.env ?? [];
    for (const u of users) {
      expect(env.find((e) => e.name === u.passwordVar)?.valueFrom?.secretKeyRef, u.user).toEqual({
        name: secretName("meridian-nats"),
        key: `${u.user}-password`,
      });
    }
  });

  it("has TLS for clients and between the nodes, from the nats-tls Secret", () => {
    const conf = natsConf["nats.conf"]!;
    const tlsMount = natsPod.containers[0]!.volumeMounts!.find(
      (m) => natsPod.volumes!.find((v) => v.name === m.name)?.secret?.secretName === secretName("nats-tls"),
    )!;
    expect(tlsMount, "nats-tls mounted").toBeDefined();
    // The client block (top level) and the cluster's, both with the mounted certificate; the nodes verify each other.
    const blocks = [...conf.matchAll(/tls \{([^}]*)\}/g)].map((m) => m[1]!);
    expect(blocks).toHaveLength(2);
    for (const block of blocks) {
      expect(block).toContain(`cert_file: "${tlsMount.mountPath}/tls.crt"`);
      expect(block).toContain(`key_file: "${tlsMount.mountPath}/tls.key"`);
    }
    expect(blocks[1]).toMatch(/verify: true/);
    expect(natsPod.containers[0]!.args).toEqual(expect.arrayContaining(["--cluster_advertise", "$(POD_NAME).nats-headless:6222"]));
    const config = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("meridian-config"))!.data!;
    expect(config.NATS_URL).toMatch(/^tls:\/\//);
  });

  it("logs every service in as its own user, its password and the NATS CA mounted as files from the Secrets", () => {
    for (const service of SERVICES) {
      const pod = podOf("Deployment", service);
      const env = Object.fromEntries((pod.containers[0]!.env ?? []).map((e) => [e.name, e]));
      expect(env.NATS_USER?.value, service).toBe(service);
      expect(env.NATS_PASSWORD, `${service}: no password in the environment`).toBeUndefined();
      const fileOf = (setting: string) => {
        const path = env[setting]?.value ?? "";
        const mount = pod.containers[0]!.volumeMounts!.find((m) => path.startsWith(`${m.mountPath}/`));
        const volume = pod.volumes!.find((v) => v.name === mount?.name);
        const file = mount ? relative(mount.mountPath, path) : "";
        return volume?.projected?.sources.find((s) => s.secret?.items?.some((i) => i.path === file))?.secret;
      };
      expect(fileOf("NATS_PASSWORD_FILE"), service).toEqual({
        name: secretName("meridian-nats"),
        items: [{ key: `${service}-password`, path: "password" }],
      });
      expect(fileOf("NATS_CA_FILE"), service).toEqual({ name: secretName("nats-tls"), items: [{ key: "ca.crt", path: "ca.crt" }] });
    }
  });

  it("the local overlay's development certificate names the nats Service and every node, is signed by its CA and allows both ends", () => {
    const dir = join(ROOT, "deploy/k8s/overlays/local/nats-tls");
    const ca = new X509Certificate(readFileSync(join(dir, "ca.crt")));
    const cert = new X509Certificate(readFileSync(join(dir, "tls.crt")));
    expect(cert.verify(ca.publicKey)).toBe(true);
    expect(cert.checkHost("nats")).toBe("nats");
    expect(cert.checkHost("nats.meridian.svc.cluster.local")).toBe("nats.meridian.svc.cluster.local");
    expect(cert.subjectAltName).toContain("DNS:*.nats-headless");
    expect(cert.keyUsage).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]));
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 365 * 86_400_000);
  });

  it("loads in nats-server with the development certificates", () => {
    const dir = mkdtempSync(join(tmpdir(), "nats-k8s-conf-"));
    const certs = join(ROOT, "deploy/k8s/overlays/local/nats-tls");
    writeFileSync(join(dir, "nats-users.conf"), natsConf["nats-users.conf"]!);
    writeFileSync(
      join(dir, "nats.conf"),
      natsConf["nats.conf"]!.replaceAll("/etc/nats-tls", certs).replace("/var/run/nats/nats.pid", join(dir, "nats.pid")),
    );
    const env = { ...process.env, POD_NAME: "nats-0", ...Object.fromEntries(users.map((u) => [u.passwordVar!, "x"])) };
    expect(() => execFileSync("nats-server", ["-c", join(dir, "nats.conf"), "-t"], { env, stdio: "pipe" })).not.toThrow();
  });
});
