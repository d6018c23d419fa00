/**
 * The official Azure IoT device SDK, loaded the one way that works from ESM (its packages are CommonJS, and not every
 * export is visible to a named ESM import), and the two things it does not offer that the client needs:
 *  - a look at the MQTT packets under it (CONNACK codes, socket errors, twin response status and $version, DPS 429s
 *    with retry-after), through the mqtt.js provider MqttBase accepts, and
 *  - holding a cloud-to-device message's PUBACK until the application took the message (mqtt.js `handleMessage`).
 * The SDK installs several copies of azure-iot-common (the provisioning packages pin older ones), so an error class is
 * matched against every copy: by class, never by `name`.
 */
import { createRequire } from "node:module";
import type * as CommonSdk from "azure-iot-common";
import type * as DeviceSdk from "azure-iot-device";
import type * as DeviceMqttSdk from "azure-iot-device-mqtt";
import type * as ProvisioningSdk from "azure-iot-provisioning-device";
import type * as ProvisioningMqttSdk from "azure-iot-provisioning-device-mqtt";
import type * as SymmetricKeySdk from "azure-iot-security-symmetric-key";
import type * as X509Sdk from "azure-iot-security-x509";

const here = createRequire(import.meta.url);

/** `name` as the package `from` itself requires it (its own nested copy when it has one). */
function requireFrom<T>(from: string, name: string): T {
  return createRequire(here.resolve(from))(name) as T;
}

/**
 * azure-iot-mqtt-base is the SDK's own dependency, not this package's: it is loaded from the SDK packages that use it,
 * and only its constructor (which takes an mqtt.js provider) is touched.
 */
interface MqttBaseModule {
  MqttBase: new (mqttProvider: MqttJs) => MqttBase;
}
/** What the SDK transports take as their MQTT layer; opaque here. */
export type MqttBase = { readonly __mqttBase?: never };

/** The SDK's packages, as the client uses them. */
export interface Sdk {
  device: typeof DeviceSdk;
  deviceMqtt: typeof DeviceMqttSdk;
  provisioning: typeof ProvisioningSdk;
  provisioningMqtt: typeof ProvisioningMqttSdk;
  symmetricKey: typeof SymmetricKeySdk;
  x509: typeof X509Sdk;
  /** The copy the hub client and the DPS client use (the DPS transport brings its own). */
  common: typeof CommonSdk;
  /** Every installed copy of azure-iot-common, for isSdkError. */
  commonCopies: (typeof CommonSdk)[];
  hubMqttBase: MqttBaseModule;
  dpsMqttBase: MqttBaseModule;
  /** The mqtt.js each MqttBase copy would load itself, so the SDK runs on the library version it was built for. */
  hubMqttJs: MqttJs;
  dpsMqttJs: MqttJs;
}

let sdk: Sdk | undefined;

/**
 * The SDK, loaded on first use (the first registration or hub connection) rather than at start: its packages and
 * their dependencies (mqtt.js, lodash, async, ...) hold about 10 MiB that an idle bridge, or one whose applications
 * have no device yet, does not need.
 */
export function loadSdk(): Sdk {
  sdk ??= requireSdk();
  return sdk;
}

function requireSdk(): Sdk {
  const commonCopies: (typeof CommonSdk)[] = [
    ...new Set(
      [
        "azure-iot-device",
        "azure-iot-device-mqtt",
        "azure-iot-provisioning-device",
        "azure-iot-provisioning-device-mqtt",
        "azure-iot-security-symmetric-key",
        "azure-iot-security-x509",
      ].flatMap((pkg) => {
        try {
          return [requireFrom<typeof CommonSdk>(pkg, "azure-iot-common")];
        } catch {
          return [];
        }
      }),
    ),
  ];
  try {
    const nested = createRequire(createRequire(here.resolve("azure-iot-provisioning-device-mqtt")).resolve("azure-iot-mqtt-base"));
    const c = nested("azure-iot-common") as typeof CommonSdk;
    if (!commonCopies.includes(c)) commonCopies.push(c);
  } catch {
    // Not nested in this install: the copies above cover it.
  }
  return {
    device: here("azure-iot-device") as typeof DeviceSdk,
    deviceMqtt: here("azure-iot-device-mqtt") as typeof DeviceMqttSdk,
    provisioning: here("azure-iot-provisioning-device") as typeof ProvisioningSdk,
    provisioningMqtt: here("azure-iot-provisioning-device-mqtt") as typeof ProvisioningMqttSdk,
    symmetricKey: here("azure-iot-security-symmetric-key") as typeof SymmetricKeySdk,
    x509: here("azure-iot-security-x509") as typeof X509Sdk,
    common: requireFrom<typeof CommonSdk>("azure-iot-device", "azure-iot-common"),
    commonCopies,
    hubMqttBase: requireFrom<MqttBaseModule>("azure-iot-device-mqtt", "azure-iot-mqtt-base"),
    dpsMqttBase: requireFrom<MqttBaseModule>("azure-iot-provisioning-device-mqtt", "azure-iot-mqtt-base"),
    hubMqttJs: requireFrom<MqttJs>(createRequire(here.resolve("azure-iot-device-mqtt")).resolve("azure-iot-mqtt-base"), "mqtt"),
    dpsMqttJs: requireFrom<MqttJs>(
      createRequire(here.resolve("azure-iot-provisioning-device-mqtt")).resolve("azure-iot-mqtt-base"),
      "mqtt",
    ),
  };
}

/**
 * The user agent the hub transport sends (`DeviceClientType`), made once per process. Each fresh transport asks
 * azure-iot-common for it, which on Linux runs `lsb_release -a` through a shell (getos) until a first answer is cached:
 * devices connecting at once before then each start one (bench:iotc's 100 devices: 64 runs of ~14 processes each). The
 * string is the SDK's own, only made once.
 */
let userAgent: Promise<string> | undefined;
export function sdkUserAgent(): Promise<string> {
  userAgent ??= loadSdk().device.getUserAgentString("");
  return userAgent;
}

/** Gives a hub transport the process's user agent, so that it does not make its own (see sdkUserAgent). */
export async function presetUserAgent(transport: object): Promise<void> {
  const t = transport as { _userAgentString?: string };
  try {
    t._userAgentString ??= await sdkUserAgent();
  } catch {
    // Left to the transport, which makes its own as before.
  }
}

export type SdkErrorName = keyof typeof CommonSdk.errors;

/** Whether `err` is an instance of the SDK's error class `name` (from any installed copy of azure-iot-common). */
export function isSdkError(err: unknown, name: SdkErrorName): boolean {
  if (!(err instanceof Error)) return false;
  return loadSdk().commonCopies.some((c) => {
    const cls = c.errors[name] as unknown;
    return typeof cls === "function" && err instanceof (cls as new (...args: never[]) => Error);
  });
}

/** The part of an mqtt.js client (v4, under the SDK) this module touches. */
interface MqttJsClient {
  on(event: "packetreceive", cb: (packet: { cmd: string; returnCode?: number; sessionPresent?: boolean; topic?: string }) => void): void;
  on(event: "error", cb: (err: Error & { code?: string | number }) => void): void;
  handleMessage(packet: { topic: string; qos?: number }, callback: (err?: Error) => void): void;
}

interface MqttJs {
  connect(uri: string, options: Record<string, unknown>): MqttJsClient;
}

/** What was seen on one device's (or one registration's) MQTT connections, for error mapping and the reported $version. */
export interface WireObservations {
  /** The last CONNACK's return code (0 accepted, 3 unavailable, 4/5 refused). */
  connackCode?: number;
  /** Called on every CONNACK of the connection (the SDK's token renewal reconnects under the same MqttBase). */
  onConnack?: (returnCode: number | undefined, sessionPresent: boolean) => void;
  /** The last socket-level error (ECONNREFUSED, a TLS verification failure, ...). */
  socketError?: Error & { code?: string | number };
  /** The last twin response: status and the reported `$version` it carried. */
  twinStatus?: number;
  twinVersion?: number;
  /** The last DPS answer's status and retry-after in seconds. */
  dpsStatus?: number;
  dpsRetryAfterSeconds?: number;
}

/**
 * Holds a QoS 1 message's PUBACK: resolves true to acknowledge it, false to leave it unacknowledged (IoT Hub delivers
 * it again on the next connection of the session). mqtt.js reads no further packet until this settles.
 */
export type InboundGate = (topic: string) => Promise<boolean> | undefined;

function queryOf(topic: string): URLSearchParams {
  const q = topic.indexOf("?");
  return new URLSearchParams(q < 0 ? "" : topic.slice(q + 1));
}

/** An mqtt.js provider for MqttBase that records `observations` and lets `gate` hold PUBACKs. */
function observingProvider(mqtt: MqttJs, observations: WireObservations, gate?: InboundGate): MqttJs {
  return {
    connect(uri, options) {
      const client = mqtt.connect(uri, options);
      client.on("packetreceive", (packet) => {
        if (packet.cmd === "connack") {
          observations.connackCode = packet.returnCode;
          observations.onConnack?.(packet.returnCode, packet.sessionPresent === true);
        } else if (packet.cmd === "publish" && typeof packet.topic === "string") {
          const topic = packet.topic;
          const twin = /^\$iothub\/twin\/res\/(\d+)\//.exec(topic);
          if (twin) {
            observations.twinStatus = Number(twin[1]);
            const v = queryOf(topic).get("$version");
            observations.twinVersion = v === null || !/^\d+$/.test(v) ? undefined : Number(v);
          }
          const dps = /^\$dps\/registrations\/res\/(\d+)\//.exec(topic);
          if (dps) {
            observations.dpsStatus = Number(dps[1]);
            const r = queryOf(topic).get("retry-after");
            observations.dpsRetryAfterSeconds = r === null || !/^\d+$/.test(r) ? undefined : Number(r);
          }
        }
      });
      client.on("error", (err) => {
        observations.socketError = err;
      });
      if (gate) {
        const original = client.handleMessage.bind(client);
        client.handleMessage = (packet, callback) => {
          const held = packet.qos === 1 ? gate(packet.topic) : undefined;
          if (!held) return original(packet, callback);
          held.then(
            (ack) => (ack ? original(packet, callback) : callback(new Error("left unacknowledged for redelivery"))),
            () => callback(new Error("left unacknowledged for redelivery")),
          );
        };
      }
      return client;
    },
  };
}

/** A MqttBase for the hub connection (azure-iot-device-mqtt's copy) that observes and gates. */
export function hubMqttBaseFor(observations: WireObservations, gate: InboundGate): MqttBase {
  const { hubMqttBase, hubMqttJs } = loadSdk();
  return new hubMqttBase.MqttBase(observingProvider(hubMqttJs, observations, gate));
}

/** A MqttBase for DPS (azure-iot-provisioning-device-mqtt's copy) that observes. */
export function dpsMqttBaseFor(observations: WireObservations): MqttBase {
  const { dpsMqttBase, dpsMqttJs } = loadSdk();
  return new dpsMqttBase.MqttBase(observingProvider(dpsMqttJs, observations));
}
