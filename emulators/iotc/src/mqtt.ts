/**
 * The one MQTT-over-TLS listener that serves both DPS and IoT Hub (protocol notes 1.2, 2, 4.4), built on aedes for
 * MQTT 3.1.1 framing, QoS 1 and persistent sessions. IoT Hub is not a general broker: the hooks below admit only its
 * topics, and twin, method and DPS answers go to the one connection they belong to (their topics carry no device id).
 * Only C2D travels through the broker's routing, so that aedes queues it for an offline clean=0 session.
 */
import { randomUUID } from "node:crypto";
import type { EventEmitter } from "node:events";
import { createServer, type Server, type TLSSocket } from "node:tls";
import type { Logger } from "@meridian/service-kit";
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from "aedes";
import type { DpsAnswer, DpsCredential, Provisioning } from "./dps.js";
import type { Faults } from "./faults.js";
import type { AttestationKind, DeviceLink, IotcModel } from "./model.js";
import { formatPropertyBag, MAX_PROPERTY_BAG_LENGTH, parsePropertyBag } from "./property-bag.js";
import { checkSasToken, parseSasToken, type SasToken } from "./sas.js";
import { MAX_SECTION_BYTES, TwinPatchError } from "./twin.js";

/** Device-to-cloud message size limit; the hub closes the connection of a device that sends more. */
export const MAX_TELEMETRY_BYTES = 256 * 1024;
/** The hub's keepalive timeout is 1.5 x the client's, capped at 1767 s: a client keepalive of 1178 s reaches it. */
const MAX_KEEPALIVE_SECONDS = 1178;
/** setTimeout's ceiling; a token expiring later than this is not timed (24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

const TOPIC = {
  dpsResponses: "$dps/registrations/res/#",
  twinResponses: "$iothub/twin/res/#",
  desired: "$iothub/twin/PATCH/properties/desired/#",
  methods: "$iothub/methods/POST/#",
} as const;

interface Connection {
  kind: "dps" | "hub";
  /** Registration id (DPS) or device id (hub), from the username. */
  id: string;
  /** The client id the device sent (DPS connections are registered with the broker under another one). */
  clientId: string;
  idScope?: string;
  modelId?: string;
  attestation?: AttestationKind;
  /** The SAS token a hub connection was accepted with. */
  token?: SasToken;
  sasTimer?: NodeJS.Timeout;
}

export interface MqttSurfaceOptions {
  hubHostName: string;
  sasGraceMs: number;
  key: string;
  cert: string;
  /** Trust anchor for device certificates (the X.509 enrollment CA). */
  clientCa: string;
}

export interface MqttSurface {
  server: Server;
  close(): Promise<void>;
}

type PacketWithPayload = PublishPacket & { payload: Buffer };

export async function startMqttSurface(
  model: IotcModel,
  provisioning: Provisioning,
  faults: Faults,
  options: MqttSurfaceOptions,
  log: Logger,
): Promise<MqttSurface> {
  const conns = new WeakMap<Client, Connection>();
  const hubClients = new Map<string, Client>();

  const subscribed = (client: Client, filter: string): boolean =>
    (client as unknown as { subscriptions: Record<string, unknown> }).subscriptions[filter] !== undefined;

  const send = (client: Client, topic: string, payload: Buffer | string): void => {
    client.publish(
      { cmd: "publish", topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false },
      (err) => err && log.debug({ clientId: client.id, topic, err: err.message }, "answer not delivered"),
    );
  };

  const credentialOf = (client: Client, password: Buffer | undefined): DpsCredential | undefined => {
    if (password && password.length > 0) {
      const token = parseSasToken(password.toString("utf8"));
      return token ? { kind: "sas", token } : undefined;
    }
    const socket = client.conn as TLSSocket;
    const cert = socket.getPeerCertificate?.();
    if (!cert || Object.keys(cert).length === 0) return undefined;
    const cn = cert.subject?.CN;
    return {
      kind: "x509",
      authorized: socket.authorized,
      ...(typeof cn === "string" ? { commonName: cn } : {}),
      ...(socket.authorizationError ? { error: String(socket.authorizationError) } : {}),
    };
  };

  const broker = new Aedes({
    // A DPS connection uses the registration id as client id, like the device's hub connection: registered with the
    // broker under its own id, so that registering never takes over or wipes the device's hub session.
    preConnect(client, packet, callback) {
      const username = packet.username ?? "";
      const dps = /^([^/]+)\/registrations\/([^/]+)\/api-version=/.exec(username);
      let conn: Connection;
      if (dps) {
        conn = { kind: "dps", idScope: dps[1]!, id: safeDecode(dps[2]!), clientId: packet.clientId };
        packet.clientId = `$dps/${randomUUID()}`;
      } else {
        const parts = username.split("/");
        const query = parseQuery(parts.slice(2).join("/"));
        const modelId = query["model-id"];
        conn = {
          kind: "hub",
          id: safeDecode(parts[1] ?? ""),
          clientId: packet.clientId,
          ...(modelId ? { modelId } : {}),
        };
      }
      if ((packet.keepalive ?? 0) > MAX_KEEPALIVE_SECONDS) packet.keepalive = MAX_KEEPALIVE_SECONDS;
      // The hub grants at most QoS 1. aedes grants what was asked for (authorizeSubscribe can only refuse), so the
      // request is lowered as it comes off the wire, before aedes sees it.
      (client as unknown as { _parser: EventEmitter })._parser.prependListener(
        "packet",
        (p: { cmd: string; subscriptions?: Subscription[] }) => {
          if (p.cmd !== "subscribe") return;
          for (const sub of p.subscriptions ?? []) if (sub.qos > 1) sub.qos = 1;
        },
      );
      conns.set(client, conn);
      callback(null, true);
    },

    authenticate(client, _username, password, done) {
      const conn = conns.get(client);
      const refuse = (returnCode: 3 | 5, reason: string): void => {
        log.info({ kind: conn?.kind, id: conn?.id, returnCode, reason }, "CONNECT refused");
        done(Object.assign(new Error(reason), { returnCode }) as AuthenticateError, false);
      };
      if (!conn) return refuse(5, "no connection state");
      const credential = credentialOf(client, password);
      if (!credential) return refuse(5, "no SAS token and no client certificate");

      if (conn.kind === "dps") {
        if (conn.clientId !== conn.id) return refuse(5, "client id is not the registration id");
        const check = provisioning.authenticate(conn.idScope ?? "", conn.id, credential);
        if (!check.ok) return refuse(5, check.reason);
        conn.attestation = check.attestation;
        log.debug({ registrationId: conn.id, attestation: check.attestation }, "DPS connection accepted");
        return done(null, true);
      }

      if (faults.take("connackServerUnavailable")) return refuse(3, "server unavailable (fault injected)");
      if (conn.clientId !== conn.id) return refuse(5, "client id is not the device id of the username");
      const device = model.device(conn.id);
      if (!device?.assignedAt) return refuse(5, "device not provisioned");
      if (device.status === "disabled") return refuse(5, "device disabled");
      let expiresAtMs: number | undefined;
      if (credential.kind === "sas") {
        const key = model.deviceKey(conn.id);
        if (key === undefined || device.attestation === "x509") return refuse(5, "device authenticates with X.509");
        const check = checkSasToken(credential.token, key, `${options.hubHostName}/devices/${conn.id}`, Date.now(), undefined);
        if (!check.ok) return refuse(5, check.reason);
        if (device.expiredTokens.includes(credential.token.sig.toString("base64"))) return refuse(5, "token expired");
        expiresAtMs = credential.token.se * 1000;
        conn.token = credential.token;
        device.tokenExpiresAt = new Date(expiresAtMs);
      } else {
        if (!credential.authorized) return refuse(5, `client certificate not trusted: ${credential.error ?? "unknown"}`);
        if (credential.commonName !== conn.id) return refuse(5, "certificate CN is not the device id");
        if (device.attestation === "symmetricKey") return refuse(5, "device authenticates with a symmetric key");
      }
      device.connects += 1;
      if (conn.modelId) device.modelId = conn.modelId;
      if (expiresAtMs !== undefined) {
        const delay = expiresAtMs + options.sasGraceMs - Date.now();
        if (delay < MAX_TIMER_MS) {
          conn.sasTimer = setTimeout(() => closeExpired(client, conn), Math.max(0, delay));
          conn.sasTimer.unref();
        }
      }
      done(null, true);
    },

    authorizeSubscribe(client, sub, done) {
      const conn = conns.get(client);
      const allowed =
        conn?.kind === "dps"
          ? [TOPIC.dpsResponses]
          : [`devices/${conn?.id}/messages/devicebound/#`, TOPIC.twinResponses, TOPIC.desired, TOPIC.methods];
      if (!conn || !allowed.includes(sub.topic)) {
        log.info({ id: conn?.id, topic: sub.topic }, "SUBSCRIBE refused");
        return done(null, null);
      }
      done(null, sub);
    },

    authorizePublish(client, packet, done) {
      const conn = client ? conns.get(client) : undefined;
      if (!client || !conn) return done(new Error("no connection state"));
      const retained = packet.retain;
      // IoT Hub stores nothing retained.
      packet.retain = false;
      if (packet.qos === 2) {
        log.info({ id: conn.id, topic: packet.topic }, "QoS 2 PUBLISH: closing the connection");
        return done(new Error("QoS 2 is not supported"));
      }
      const p = packet as PacketWithPayload;
      if (conn.kind === "dps") return onDpsPublish(client, conn, p, done);
      const t = packet.topic;
      const events = `devices/${conn.id}/messages/events`;
      if (t === events || t.startsWith(`${events}/`)) return onTelemetry(conn, p, retained, done);
      if (t.startsWith("$iothub/twin/GET/")) return later(done, () => onTwinGet(client, conn, t));
      if (t.startsWith("$iothub/twin/PATCH/properties/reported/")) {
        return later(done, () => onReportedPatch(client, conn, t, p.payload));
      }
      if (t.startsWith("$iothub/methods/res/")) return later(done, () => onMethodResponse(conn, t, p.payload));
      log.info({ id: conn.id, topic: t }, "PUBLISH to a topic the hub does not serve: closing the connection");
      done(new Error(`publishing to ${t} is not allowed`));
    },
  });

  /** As IoT Hub does when a connection's token expires: it closes the connection (MQTT 3.1.1 has no server DISCONNECT). */
  function closeExpired(client: Client, conn: Connection): void {
    clearTimeout(conn.sasTimer);
    if (client.closed) return;
    const d = model.device(conn.id);
    if (d) d.tokenExpiries += 1;
    log.info({ deviceId: conn.id }, "SAS token expired: closing the connection");
    client.close();
  }

  /** Lets the broker acknowledge (a QoS 1 PUBACK) before the answer goes out, as the hub does. */
  function later(done: (err?: Error | null) => void, work: () => void): void {
    done(null);
    setImmediate(() => {
      try {
        work();
      } catch (err) {
        log.error({ err }, "handling a device request failed");
      }
    });
  }

  function onDpsPublish(client: Client, conn: Connection, p: PacketWithPayload, done: (err?: Error | null) => void): void {
    const t = p.topic;
    const q = parseQuery(t.slice(t.indexOf("?") + 1));
    const rid = q.$rid ?? "";
    let answer: () => DpsAnswer;
    if (t.startsWith("$dps/registrations/PUT/iotdps-register/")) {
      answer = () => provisioning.register(conn.id, conn.attestation ?? "symmetricKey", p.payload);
    } else if (t.startsWith("$dps/registrations/GET/iotdps-get-operationstatus/")) {
      answer = () => provisioning.operationStatus(conn.id, q.operationId ?? "");
    } else {
      log.info({ registrationId: conn.id, topic: t }, "PUBLISH to a topic DPS does not serve: closing the connection");
      done(new Error(`publishing to ${t} is not allowed`));
      return;
    }
    later(done, () => {
      const a = answer();
      if (!subscribed(client, TOPIC.dpsResponses)) return;
      const retry = a.retryAfterSeconds === undefined ? "" : `&retry-after=${a.retryAfterSeconds}`;
      send(client, `$dps/registrations/res/${a.status}/?$rid=${encodeURIComponent(rid)}${retry}`, JSON.stringify(a.body));
      log.debug({ registrationId: conn.id, status: a.status, state: a.body.status }, "DPS answer");
    });
  }

  function onTelemetry(conn: Connection, p: PacketWithPayload, retained: boolean, done: (err?: Error | null) => void): void {
    const events = `devices/${conn.id}/messages/events/`;
    const bag = p.topic.length > events.length ? p.topic.slice(events.length) : "";
    if (p.payload.length > MAX_TELEMETRY_BYTES || bag.length > MAX_PROPERTY_BAG_LENGTH) {
      log.info({ deviceId: conn.id, bytes: p.payload.length }, "telemetry over 256 KiB: closing the connection");
      done(new Error("message too large"));
      return;
    }
    const all = parsePropertyBag(bag);
    if (retained) all["mqtt-retain"] = "true";
    const properties: Record<string, string> = {};
    for (const [k, v] of Object.entries(all)) if (!k.startsWith("$.")) properties[k] = v;
    let json: unknown;
    try {
      json = JSON.parse(p.payload.toString("utf8"));
    } catch {
      json = undefined;
    }
    model.addTelemetry({
      deviceId: conn.id,
      body: Buffer.from(p.payload),
      ...(json === undefined ? {} : { json }),
      ...(all["$.sub"] === undefined ? {} : { component: all["$.sub"] }),
      ...(all["$.ct"] === undefined ? {} : { contentType: all["$.ct"] }),
      ...(all["$.ce"] === undefined ? {} : { contentEncoding: all["$.ce"] }),
      ...(all["$.mid"] === undefined ? {} : { messageId: all["$.mid"] }),
      ...(all["$.cid"] === undefined ? {} : { correlationId: all["$.cid"] }),
      properties,
      systemProperties: all,
      receivedAt: new Date(),
    });
    // No PUBACK: aedes acknowledges what arrives with QoS 1 only.
    if (faults.dropPubacks) p.qos = 0;
    const delay = faults.delayPubackMs;
    if (delay > 0) setTimeout(() => done(null), delay);
    else done(null);
  }

  function twinAnswer(client: Client, status: number, rid: string, body: string, version?: number): void {
    if (!subscribed(client, TOPIC.twinResponses)) return;
    const v = version === undefined ? "" : `&$version=${version}`;
    send(client, `$iothub/twin/res/${status}/?$rid=${encodeURIComponent(rid)}${v}`, body);
  }

  function twinFault(client: Client, rid: string): boolean {
    if (faults.take("dropTwinResponses")) return true;
    if (faults.take("twinThrottle")) {
      twinAnswer(client, 429, rid, JSON.stringify({ errorCode: 429001, message: "twin request throttled (fault injected)" }));
      return true;
    }
    return false;
  }

  function onTwinGet(client: Client, conn: Connection, topic: string): void {
    const rid = parseQuery(topic.slice(topic.indexOf("?") + 1)).$rid ?? "";
    if (twinFault(client, rid)) return;
    // No $version in the topic of a GET answer (seen in a real trace).
    twinAnswer(client, 200, rid, JSON.stringify(model.twin(conn.id)));
  }

  function onReportedPatch(client: Client, conn: Connection, topic: string, payload: Buffer): void {
    const rid = parseQuery(topic.slice(topic.indexOf("?") + 1)).$rid ?? "";
    if (twinFault(client, rid)) return;
    if (payload.length > MAX_SECTION_BYTES) {
      const message = `reported properties patch is ${payload.length} bytes, over ${MAX_SECTION_BYTES}`;
      twinAnswer(client, 400, rid, JSON.stringify({ errorCode: 400004, message }));
      return;
    }
    let patch: unknown;
    try {
      patch = JSON.parse(payload.toString("utf8"));
    } catch {
      twinAnswer(client, 400, rid, JSON.stringify({ errorCode: 400004, message: "reported properties patch is not JSON" }));
      return;
    }
    try {
      const version = model.patchReported(conn.id, patch);
      twinAnswer(client, 204, rid, "", version);
    } catch (err) {
      if (!(err instanceof TwinPatchError)) throw err;
      twinAnswer(client, 400, rid, JSON.stringify({ errorCode: 400004, message: err.message }));
    }
  }

  function onMethodResponse(conn: Connection, topic: string, payload: Buffer): void {
    const m = /^\$iothub\/methods\/res\/(-?\d{1,9})\/\?(.*)$/.exec(topic);
    if (!m) return void log.info({ deviceId: conn.id, topic }, "method response topic not understood");
    const rid = parseQuery(m[2]!).$rid ?? "";
    let body: unknown = null;
    const text = payload.toString("utf8");
    if (text.trim() !== "") {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (!model.completeMethod(conn.id, rid, Number(m[1]), body)) {
      log.info({ deviceId: conn.id, rid }, "method response for no pending call (late or unknown)");
    }
  }

  broker.on("clientReady", (client) => {
    const conn = conns.get(client);
    if (conn?.kind !== "hub") return;
    hubClients.set(conn.id, client);
    const d = model.device(conn.id);
    if (d) d.connected = true;
    log.info({ deviceId: conn.id, clean: client.clean, modelId: conn.modelId }, "device connected");
  });
  broker.on("clientDisconnect", (client) => {
    const conn = conns.get(client);
    if (!conn) return;
    clearTimeout(conn.sasTimer);
    if (conn.kind !== "hub" || hubClients.get(conn.id) !== client) return;
    hubClients.delete(conn.id);
    const d = model.device(conn.id);
    if (d) d.connected = false;
    log.info({ deviceId: conn.id }, "device disconnected");
  });
  broker.on("clientError", (client, err) => log.debug({ clientId: client.id, err: err.message }, "client error"));
  broker.on("connectionError", (_client, err) => log.debug({ err: err.message }, "connection error"));

  model.on("desired", (deviceId, patch, version) => {
    const client = hubClients.get(deviceId);
    if (!client || !subscribed(client, TOPIC.desired)) return;
    send(client, `$iothub/twin/PATCH/properties/desired/?$version=${version}`, JSON.stringify({ ...patch, $version: version }));
  });
  model.on("disabled", (deviceId) => hubClients.get(deviceId)?.close());

  const link: DeviceLink = {
    sendMethod(deviceId, name, rid, payload) {
      const client = hubClients.get(deviceId);
      if (!client || !subscribed(client, TOPIC.methods)) return false;
      send(client, `$iothub/methods/POST/${name}/?$rid=${rid}`, payload);
      return true;
    },
    sendC2D(deviceId, body, properties) {
      const bag = formatPropertyBag({
        "$.mid": randomUUID(),
        "$.to": `/devices/${deviceId}/messages/devicebound`,
        ...properties,
      });
      broker.publish(
        { cmd: "publish", topic: `devices/${deviceId}/messages/devicebound/${bag}`, payload: body, qos: 1, retain: false, dup: false },
        (err) => err && log.warn({ deviceId, err: err.message }, "C2D message not routed"),
      );
    },
    disconnect(deviceId) {
      // A network drop: no DISCONNECT, the socket just goes.
      hubClients.get(deviceId)?.conn.destroy();
    },
    expireToken(deviceId) {
      const client = hubClients.get(deviceId);
      const conn = client ? conns.get(client) : undefined;
      if (!client || !conn?.token || client.closed) return false;
      model.tokenExpiredEarly(deviceId, conn.token.sig.toString("base64"));
      closeExpired(client, conn);
      return true;
    },
  };
  model.attach(link);

  await broker.listen();
  const server = createServer(
    {
      key: options.key,
      cert: options.cert,
      ca: [options.clientCa],
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
    },
    (socket) => broker.handle(socket),
  );
  server.on("tlsClientError", (err) => log.debug({ err: err.message }, "TLS handshake failed"));

  return {
    server,
    close: () => new Promise<void>((resolve) => broker.close(() => resolve())),
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** `a=1&b=2` (a leading `?` ignored), values decoded when they can be. */
export function parseQuery(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s.startsWith("?") ? s.slice(1) : s).split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    out[safeDecode(eq < 0 ? part : part.slice(0, eq))] = eq < 0 ? "" : safeDecode(part.slice(eq + 1));
  }
  return out;
}
