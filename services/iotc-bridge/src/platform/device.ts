/**
 * One IoT Central device on the official SDK's `Client` over MQTT. The SDK's own reconnect is switched off (NoRetry):
 * it resubscribes twin topics only through the hub's persistent session and hides its state; here every connection is
 * a fresh Client (all topics subscribed anew), the twin is read and pending writable properties acknowledged each
 * time, and drops are retried with @meridian/retry's jittered backoff. SAS renewal stays the SDK's (it reconnects the
 * same MQTT session with a new token `tokenRenewalMarginSeconds` before expiry).
 */
import { randomUUID } from "node:crypto";
import tls from "node:tls";
import { type BackoffPolicy, backoffDelay, isRetryable, retryAfterOf } from "@meridian/retry";
import type { Client, Message, Twin as SdkTwin } from "azure-iot-device";
import type { Mqtt } from "azure-iot-device-mqtt";
import { deviceSettingsSchema, parseSettings, provisioningEndpointSchema } from "./config.js";
import {
  checkSize,
  MAX_COMMAND_RESPONSE_BYTES,
  MAX_REPORTED_BYTES,
  MAX_TELEMETRY_BYTES,
  nestInComponent,
  OFFLINE_COMMAND_PROPERTY,
  offlineCommandName,
  parsePayload,
  pendingWritableProperties,
  requireObject,
  splitCommandName,
  telemetrySize,
  toJson,
  validateAck,
  validateComponentName,
  writablePropertyAckPatch,
  writablePropertyChanges,
} from "./conventions.js";
import {
  IotcDeviceDisabledError,
  IotcError,
  IotcInvalidArgumentError,
  IotcNotConnectedError,
  IotcRegistrationFailedError,
  IotcTimeoutError,
  IotcUnauthorizedError,
} from "./errors.js";
import { type DeviceLogger, silentLogger } from "./logger.js";
import { deviceKeyOf, register, validateCredential } from "./provisioning.js";
import { validateRegistrationId } from "./registration-id.js";
import { hubMqttBaseFor, loadSdk, presetUserAgent, type WireObservations } from "./sdk.js";
import { hubError, twinError } from "./sdk-errors.js";
import type {
  DeviceConnectionState,
  DeviceCredential,
  DeviceHandlers,
  DeviceRegistration,
  IotcDevice,
  ProvisioningEndpoint,
  RegistrationStore,
  TelemetryOptions,
  Twin,
  WritablePropertyAck,
  WritablePropertyChange,
} from "./types.js";

export interface IotcDeviceOptions {
  endpoint: ProvisioningEndpoint;
  registrationId: string;
  credential: DeviceCredential;
  store: RegistrationStore;
  handlers?: DeviceHandlers;
  logger?: DeviceLogger;
  /** Sent to DPS (`modelId` and `iotcModelId`) and to the hub (`model-id`). */
  modelId?: string;
  /** Default 3600. */
  tokenValiditySeconds?: number;
  /** Default 900; less than tokenValiditySeconds. */
  tokenRenewalMarginSeconds?: number;
  /**
   * PEM trust anchor for the hub's TLS, trusted beside the default CAs. DPS is trusted through the
   * process's default CAs only (the SDK's DPS transport takes none): add an emulator's CA with
   * `tls.setDefaultCACertificates([...tls.getCACertificates("default"), caPem])`. Given here, each connection builds
   * a TLS context of its own (about 1.2 MiB and 5 ms of CPU): for many devices, trust the CA process-wide instead.
   */
  ca?: string;
  /** Default 60 000. */
  registrationTimeoutMs?: number;
  /** CONNECT, PUBACK and twin responses; default 30 000. */
  operationTimeoutMs?: number;
  /** A command's deadline (IoT Central waits 30 s), and how long a writable property's handler may take; default 28 000. */
  commandTimeoutMs?: number;
  /** Default 10 000; see README "Offline commands". */
  offlineCommandTimeoutMs?: number;
  /** Default 180. */
  keepAliveSeconds?: number;
  /** Reconnect backoff after a drop; default 1 s doubling to 60 s, jitter 0.5. */
  reconnect?: Partial<BackoffPolicy>;
}

/** One connection to the hub: a fresh SDK Client, its transport, and what the hooked mqtt.js saw on it. */
interface Session {
  client: Client;
  transport: Mqtt;
  twin?: SdkTwin;
  observations: WireObservations;
  /** Settles the PUBACK of the cloud-to-device message being handled (mqtt.js handles one at a time). */
  c2dPending?: (ack: boolean) => void;
}

class HandlerTimeout extends Error {}

/** Errors after which retrying with the same credential cannot help. */
function isPermanent(err: unknown): boolean {
  return (
    err instanceof IotcUnauthorizedError ||
    err instanceof IotcDeviceDisabledError ||
    err instanceof IotcRegistrationFailedError ||
    err instanceof IotcInvalidArgumentError
  );
}

/** Without Promise.race and finally: one promise instead of four, on every telemetry message. */
function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function callback<T = void>(run: (done: (err?: Error | null, result?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    run((err, result) => (err ? reject(err) : resolve(result as T)));
  });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether a stored registration was made for this device and credential (and is whole: a store may hold anything). */
function sameCredential(stored: DeviceRegistration, credential: DeviceCredential, registrationId: string): boolean {
  if (stored.registrationId !== registrationId || typeof stored.assignedHub !== "string" || typeof stored.deviceId !== "string")
    return false;
  if (typeof stored.credential !== "object" || stored.credential === null) return false;
  if (stored.credential.kind === "sas") return deviceKeyOf(credential, registrationId) === stored.credential.deviceKey;
  return (
    credential.kind === "x509" &&
    credential.certificateChainPem === stored.credential.certificateChainPem &&
    credential.privateKeyPem === stored.credential.privateKeyPem
  );
}

class IotcDeviceClient implements IotcDevice {
  readonly registrationId: string;
  private readonly endpoint: ProvisioningEndpoint;
  private readonly credential: DeviceCredential;
  private readonly store: RegistrationStore;
  private readonly handlers: DeviceHandlers;
  private readonly log: DeviceLogger;
  private readonly settings: ReturnType<typeof deviceSettingsSchema.parse>;
  private readonly backoff: BackoffPolicy;

  private currentState: DeviceConnectionState = "disconnected";
  private currentRegistration: DeviceRegistration | undefined;
  private session: Session | undefined;
  private opening: Promise<void> | undefined;
  /** open() was called and close() was not: drops are reconnected. */
  private wanted = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  /** Writable properties are applied one at a time, so acknowledgements never go out of order. */
  private propertyQueue: Promise<void> = Promise.resolve();
  private readonly acknowledged = new Map<string, number>();

  constructor(options: IotcDeviceOptions) {
    validateRegistrationId(options.registrationId);
    validateCredential(options.credential);
    this.endpoint = parseSettings(provisioningEndpointSchema, options.endpoint, "endpoint");
    if (typeof options.store?.get !== "function" || typeof options.store.put !== "function")
      throw new IotcInvalidArgumentError("store", "must be a RegistrationStore (get, put, delete)");
    this.settings = parseSettings(
      deviceSettingsSchema,
      {
        modelId: options.modelId,
        tokenValiditySeconds: options.tokenValiditySeconds,
        tokenRenewalMarginSeconds: options.tokenRenewalMarginSeconds,
        registrationTimeoutMs: options.registrationTimeoutMs,
        operationTimeoutMs: options.operationTimeoutMs,
        commandTimeoutMs: options.commandTimeoutMs,
        offlineCommandTimeoutMs: options.offlineCommandTimeoutMs,
        keepAliveSeconds: options.keepAliveSeconds,
        reconnect: options.reconnect === undefined ? undefined : { ...options.reconnect },
        ca: options.ca,
      },
      "options",
    );
    this.backoff = this.settings.reconnect;
    this.registrationId = options.registrationId;
    this.credential = options.credential;
    this.store = options.store;
    this.handlers = options.handlers ?? {};
    this.log = options.logger ?? silentLogger;
  }

  get state(): DeviceConnectionState {
    return this.currentState;
  }

  get registration(): DeviceRegistration | undefined {
    return this.currentRegistration;
  }

  private setState(state: DeviceConnectionState, error?: Error): void {
    if (state === this.currentState && error === undefined) return;
    this.currentState = state;
    try {
      this.handlers.state?.(state, error);
    } catch (err) {
      this.log.error({ registrationId: this.registrationId, err: errorMessage(err) }, "state handler threw");
    }
  }

  open(options: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    this.wanted = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.opening) return this.opening;
    if (this.currentState === "connected" && !options.force) return Promise.resolve();
    this.opening = this.connect(options.force ?? false, options.signal).finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async connect(force: boolean, signal?: AbortSignal): Promise<void> {
    this.setState("connecting");
    try {
      if (force && this.session) await this.dropSession(this.session);
      await this.establish(force, signal);
      if (!this.wanted) {
        const s = this.session;
        if (s) await this.dropSession(s);
        throw new IotcNotConnectedError("closed while connecting", { registrationId: this.registrationId });
      }
      this.reconnectAttempt = 0;
      this.setState("connected");
    } catch (err) {
      const e = err instanceof IotcError || signal?.aborted ? (err as Error) : hubError(err, {}, this.registrationId, "connection");
      if (isPermanent(e)) {
        this.wanted = false;
        this.setState("failed", e);
      } else this.setState("disconnected", e);
      throw e;
    }
  }

  /** Registration (stored, or from DPS), then the hub; a stored registration the hub refuses is registered again once. */
  private async establish(force: boolean, signal?: AbortSignal): Promise<void> {
    let registration = force ? undefined : (this.currentRegistration ?? (await this.stored()));
    let fresh = false;
    if (!registration) {
      registration = await this.registerAndStore(signal);
      fresh = true;
    }
    try {
      await this.connectHub(registration, signal);
    } catch (err) {
      if (fresh || !(err instanceof IotcUnauthorizedError)) throw err;
      // The seed's behaviour: cached credentials refused (device moved, re-provisioned, key rotated) → DPS again.
      this.log.warn(
        { registrationId: this.registrationId, assignedHub: registration.assignedHub, err: err.message },
        "IoT Hub refused the stored registration; registering with DPS again",
      );
      registration = await this.registerAndStore(signal);
      await this.connectHub(registration, signal);
    }
  }

  private async stored(): Promise<DeviceRegistration | undefined> {
    let stored: DeviceRegistration | undefined;
    try {
      stored = await this.store.get(this.registrationId);
    } catch (err) {
      this.log.warn({ registrationId: this.registrationId, err: errorMessage(err) }, "registration store unreadable; registering with DPS");
      return undefined;
    }
    if (!stored) return undefined;
    if (!sameCredential(stored, this.credential, this.registrationId)) {
      this.log.info({ registrationId: this.registrationId }, "stored registration is for another credential; registering with DPS");
      return undefined;
    }
    this.currentRegistration = stored;
    return stored;
  }

  private async registerAndStore(signal?: AbortSignal): Promise<DeviceRegistration> {
    const registration = await register(this.endpoint, this.registrationId, this.credential, {
      ...(this.settings.modelId === undefined ? {} : { modelId: this.settings.modelId }),
      ...(signal === undefined ? {} : { signal }),
      timeoutMs: this.settings.registrationTimeoutMs,
      logger: this.log,
    });
    this.currentRegistration = registration;
    try {
      await this.store.put(registration);
    } catch (err) {
      // Connecting still works; the next start registers again.
      this.log.warn({ registrationId: this.registrationId, err: errorMessage(err) }, "registration could not be stored");
    }
    return registration;
  }

  private async connectHub(registration: DeviceRegistration, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const observations: WireObservations = {};
    const session = { observations } as Session;
    const base = hubMqttBaseFor(observations, (topic) => this.holdInbound(session, topic));
    const { device, deviceMqtt, common } = loadSdk();
    const gateway = this.endpoint.gatewayHost;
    const auth =
      registration.credential.kind === "sas"
        ? device.SharedAccessKeyAuthenticationProvider.fromConnectionString(
            `HostName=${registration.assignedHub};DeviceId=${registration.deviceId};SharedAccessKey=${registration.credential.deviceKey}` +
              (gateway ? `;GatewayHostName=${gateway}` : ""),
            this.settings.tokenValiditySeconds,
            this.settings.tokenRenewalMarginSeconds,
          )
        : new device.X509AuthenticationProvider({
            host: registration.assignedHub,
            deviceId: registration.deviceId,
            ...(gateway ? { gatewayHostName: gateway } : {}),
            x509: { cert: registration.credential.certificateChainPem, key: registration.credential.privateKeyPem },
          } as never);
    // The SAS provider emits 'error' when a renewal fails; unheard, it would end the process. The drop that follows reconnects.
    (auth as unknown as { on?(event: "error", cb: (err: Error) => void): void }).on?.("error", (err) =>
      this.log.warn({ registrationId: this.registrationId, err: err.message }, "SAS token renewal failed"),
    );
    const transport = new deviceMqtt.Mqtt(auth, base as never);
    const client = new device.Client(transport);
    session.client = client;
    session.transport = transport;
    client.setRetryPolicy(new common.NoRetry());
    // The SDK emits 'error' when re-enabling a feature fails; unheard, an 'error' event would end the process.
    client.on("error", (err: Error) => this.log.warn({ registrationId: this.registrationId, err: err.message }, "IoT Hub client error"));
    // Until the connection is set up (subscriptions, twin), a close ends the setup at once instead of leaving each step
    // to its timeout; afterwards it is a drop, which reconnects.
    let closedDuringSetup!: (cause: unknown) => void;
    const closed = new Promise<never>((_, reject) => {
      closedDuringSetup = reject;
    });
    closed.catch(() => {});
    client.on("disconnect", (result?: { transportObj?: unknown }) => {
      if (this.session === session) this.onDrop(session, result?.transportObj);
      else
        closedDuringSetup(
          new IotcNotConnectedError("IoT Hub closed the connection while it was being set up", {
            registrationId: this.registrationId,
            cause: result?.transportObj,
          }),
        );
    });
    this.interceptMethods(session);
    transport.on("twinDesiredPropertiesUpdate", (patch: Record<string, unknown>) => this.onDesiredPatch(session, patch));
    // On the transport, not the Client: a Client 'message' listener would connect before the options are set, and a
    // message the hub redelivers right after CONNACK (unacknowledged last time) must find a listener already.
    transport.on("message", (message: Message) => void this.onCloudToDevice(session, message));

    const timeoutMs = this.settings.operationTimeoutMs;
    const timeout = (what: string) => () =>
      new IotcTimeoutError(`IoT Hub: no answer to the ${what} within ${timeoutMs} ms`, { registrationId: this.registrationId });
    const step = <T>(operation: Promise<T>, what: string): Promise<T> =>
      withTimeout(Promise.race([operation, closed]), timeoutMs, timeout(what));
    try {
      await client.setOptions({
        keepalive: this.settings.keepAliveSeconds,
        ...(this.settings.modelId === undefined ? {} : { modelId: this.settings.modelId }),
        // Beside the default CAs, not instead of them (a CA given for an emulator or a proxy must not untrust Azure's).
        ...(this.settings.ca === undefined ? {} : { ca: [...tls.getCACertificates("default"), this.settings.ca].join("\n") }),
      } as never);
      await presetUserAgent(transport);
      await step(client.open(), "CONNECT");
      signal?.throwIfAborted();
      // Desired updates before the twin GET: a patch between the two is then applied twice (acks are idempotent) rather than missed.
      await step(
        callback((done) => transport.enableTwinDesiredPropertiesUpdates(done)),
        "subscription",
      );
      observations.twinStatus = undefined;
      session.twin = await step(client.getTwin(), "twin request");
      await step(
        callback((done) => transport.enableMethods(done)),
        "subscription",
      );
      await step(
        callback((done) => transport.enableC2D(done)),
        "subscription",
      );
    } catch (err) {
      const mapped = err instanceof IotcError ? err : twinOrHub(err, observations, this.registrationId);
      await this.dropSession(session);
      if (signal?.aborted) throw signal.reason;
      throw mapped;
    }
    this.session = session;
    // The SDK's token renewal reconnects without subscribing again, trusting the hub to keep the session (clean=0).
    // Should the hub answer that it kept none, nothing would arrive any more: connect anew, which subscribes.
    observations.onConnack = (code, sessionPresent) => {
      if (code !== 0 || sessionPresent || this.session !== session) return;
      this.log.warn({ registrationId: this.registrationId }, "IoT Hub kept no session across the token renewal; reconnecting");
      queueMicrotask(() =>
        this.onDrop(
          session,
          new IotcNotConnectedError("IoT Hub kept no session across the token renewal", { registrationId: this.registrationId }),
        ),
      );
    };
    this.log.info(
      { registrationId: this.registrationId, deviceId: registration.deviceId, assignedHub: registration.assignedHub },
      "connected to IoT Hub",
    );
    const twin = this.plainTwin(session.twin!);
    const pending = pendingWritableProperties(twin);
    if (pending.length > 0) {
      const done = Promise.all(pending.map((change) => this.enqueueWritable(session, change)));
      // Acknowledged before open() resolves unless a handler is slow; then they finish in the background.
      await Promise.race([done, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    }
  }

  private async dropSession(session: Session): Promise<void> {
    if (this.session === session) this.session = undefined;
    session.c2dPending?.(false);
    session.c2dPending = undefined;
    const client = session.client;
    if (!client) return;
    client.removeAllListeners("disconnect");
    try {
      await withTimeout(client.close(), this.settings.operationTimeoutMs, () => new Error("close timed out"));
    } catch (err) {
      this.log.debug({ registrationId: this.registrationId, err: errorMessage(err) }, "closing the IoT Hub connection failed");
    }
  }

  private onDrop(session: Session, cause: unknown): void {
    if (this.session !== session) return;
    this.session = undefined;
    void this.dropSession(session);
    const error = hubError(
      cause ?? new IotcNotConnectedError("connection closed"),
      session.observations,
      this.registrationId,
      "connection",
    );
    this.log.warn({ registrationId: this.registrationId, err: error.message }, "IoT Hub connection lost");
    if (!this.wanted) {
      this.setState("disconnected", error);
      return;
    }
    this.setState("disconnected", error);
    this.scheduleReconnect(error);
  }

  private scheduleReconnect(error: Error): void {
    if (!this.wanted || this.reconnectTimer) return;
    this.reconnectAttempt++;
    const delay = Math.max(backoffDelay(this.reconnectAttempt, this.backoff), retryAfterOf(error) ?? 0);
    this.log.info({ registrationId: this.registrationId, attempt: this.reconnectAttempt, delayMs: delay }, "reconnecting to IoT Hub");
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.wanted || this.opening) return;
      this.opening = this.connect(false).finally(() => {
        this.opening = undefined;
      });
      this.opening.catch((err: Error) => {
        if (isPermanent(err)) {
          this.log.error({ registrationId: this.registrationId, err: err.message }, "IoT Hub refuses the device; not reconnecting");
          return;
        }
        this.scheduleReconnect(err);
      });
    }, delay);
  }

  async close(): Promise<void> {
    this.wanted = false;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const session = this.session;
    this.session = undefined;
    if (session) await this.dropSession(session);
    if (this.currentState !== "failed") this.setState("disconnected");
  }

  private requireSession(): Session {
    const session = this.session;
    if (!session || this.currentState !== "connected")
      throw new IotcNotConnectedError(`device ${this.registrationId} is not connected (${this.currentState})`, {
        registrationId: this.registrationId,
      });
    return session;
  }

  async sendTelemetry(payload: Record<string, unknown>, options: TelemetryOptions = {}): Promise<void> {
    requireObject(payload, "payload");
    const body = toJson(payload, "payload");
    const { component, properties = {}, creationTime } = options;
    if (component !== undefined) validateComponentName(component, "component");
    requireObject(properties, "properties");
    for (const [k, v] of Object.entries(properties)) {
      if (k.length === 0 || k.length > 256)
        throw new IotcInvalidArgumentError("properties", `a name must be 1 to 256 characters, got ${k.length}`);
      if (k.startsWith("$.") || k === "dt-subject" || k === "iothub-creation-time-utc")
        throw new IotcInvalidArgumentError(`properties.${k}`, "is reserved (set it through the telemetry options)");
      if (typeof v !== "string") throw new IotcInvalidArgumentError(`properties.${k}`, "must be a string");
    }
    const messageId = options.messageId ?? randomUUID();
    if (typeof messageId !== "string" || messageId.length === 0 || messageId.length > 128)
      throw new IotcInvalidArgumentError("messageId", "must be 1 to 128 characters");
    if (creationTime !== undefined && (!(creationTime instanceof Date) || Number.isNaN(creationTime.getTime())))
      throw new IotcInvalidArgumentError("creationTime", "must be a valid Date");
    const appProperties: Record<string, string> = { ...properties };
    if (creationTime) appProperties["iothub-creation-time-utc"] = creationTime.toISOString();
    const systemProperties: Record<string, string> = { "$.mid": messageId, "$.ct": "application/json", "$.ce": "utf-8" };
    if (component !== undefined) systemProperties["$.sub"] = component;
    checkSize(telemetrySize(body, systemProperties, appProperties), MAX_TELEMETRY_BYTES, this.registrationId);

    const session = this.requireSession();
    const message = new (loadSdk().device.Message)(body);
    message.messageId = messageId;
    message.contentType = "application/json";
    message.contentEncoding = "utf-8";
    for (const [k, v] of Object.entries(appProperties)) message.properties.add(k, v);
    // azure-iot-device-mqtt writes the application property dt-subject as the system property $.sub.
    if (component !== undefined) message.properties.add("dt-subject", component);
    try {
      await withTimeout(
        session.client.sendEvent(message),
        this.settings.operationTimeoutMs,
        () => new IotcTimeoutError("IoT Hub did not acknowledge the telemetry in time", { registrationId: this.registrationId }),
      );
    } catch (err) {
      throw hubError(err, session.observations, this.registrationId, "telemetry");
    }
  }

  async updateReportedProperties(patch: Record<string, unknown>, component?: string): Promise<number | undefined> {
    requireObject(patch, "patch");
    return this.report(nestInComponent(patch, component));
  }

  private async report(body: Record<string, unknown>): Promise<number | undefined> {
    const text = toJson(body, "patch");
    checkSize(Buffer.byteLength(text, "utf8"), MAX_REPORTED_BYTES, this.registrationId);
    return this.reportOn(this.requireSession(), body);
  }

  /** Sends a reported patch as it is; resolves with the reported $version IoT Hub answered (the SDK drops it; the wire has it). */
  private async reportOn(session: Session, body: Record<string, unknown>): Promise<number | undefined> {
    const twin = session.twin;
    if (!twin) throw new IotcNotConnectedError("twin not read yet", { registrationId: this.registrationId });
    session.observations.twinStatus = undefined;
    try {
      return await withTimeout(
        callback<number | undefined>((done) =>
          // Read in the SDK's callback: it runs right after the response packet, before mqtt.js reads the next one.
          twin.properties.reported.update(body, (err?: Error) => (err ? done(err) : done(null, session.observations.twinVersion))),
        ),
        this.settings.operationTimeoutMs,
        () => new IotcTimeoutError("IoT Hub did not answer the reported properties in time", { registrationId: this.registrationId }),
      );
    } catch (err) {
      throw twinError(err, session.observations, this.registrationId, "reported properties update");
    }
  }

  async getTwin(): Promise<Twin> {
    const session = this.requireSession();
    session.observations.twinStatus = undefined;
    try {
      const twin = await withTimeout(
        session.client.getTwin(),
        this.settings.operationTimeoutMs,
        () => new IotcTimeoutError("IoT Hub did not answer the twin request in time", { registrationId: this.registrationId }),
      );
      return this.plainTwin(twin);
    } catch (err) {
      throw twinError(err, session.observations, this.registrationId, "twin request");
    }
  }

  private plainTwin(twin: SdkTwin): Twin {
    // JSON drops the SDK's `reported.update` function and detaches the copy from the SDK's cache.
    return JSON.parse(JSON.stringify({ desired: twin.properties.desired, reported: twin.properties.reported })) as Twin;
  }

  // Writable properties -------------------------------------------------------------------------------------------

  private onDesiredPatch(session: Session, patch: Record<string, unknown>): void {
    if (this.session !== session) return;
    const version = patch.$version;
    if (typeof version !== "number") {
      this.log.warn({ registrationId: this.registrationId }, "desired properties patch without $version ignored");
      return;
    }
    for (const change of writablePropertyChanges(patch, version)) void this.enqueueWritable(session, change);
  }

  private enqueueWritable(session: Session, change: WritablePropertyChange, attempt = 1): Promise<void> {
    const run = this.propertyQueue.then(() => this.applyWritable(session, change, attempt));
    this.propertyQueue = run.catch(() => {});
    return this.propertyQueue;
  }

  private async applyWritable(session: Session, change: WritablePropertyChange, attempt = 1): Promise<void> {
    const key = `${change.component ?? ""}/${change.name}`;
    if ((this.acknowledged.get(key) ?? -1) >= change.version) return;
    const handler = this.handlers.writableProperty;
    if (!handler) {
      this.log.debug({ registrationId: this.registrationId, property: key }, "no writable property handler; left pending");
      return;
    }
    let ack: WritablePropertyAck;
    try {
      // Bounded, so that one handler that never answers does not hold every later property of the device.
      ack = await withTimeout(handler(change), this.settings.commandTimeoutMs, () => new HandlerTimeout());
      validateAck(ack);
    } catch (err) {
      if (err instanceof HandlerTimeout) {
        this.log.warn(
          { registrationId: this.registrationId, property: key, version: change.version, timeoutMs: this.settings.commandTimeoutMs },
          "writable property handler did not answer in time; left pending (delivered again at the next connection)",
        );
        return;
      }
      if (isRetryable(err)) {
        // The handler could not take the change now (its queue is down): it stays unacknowledged, so IoT Central keeps
        // showing it pending, and it is offered again after a backoff while this connection lasts (and by the twin
        // reconciliation of the next connection). An ac 500 would record av = this version and it would never come back.
        const delayMs = retryAfterOf(err) ?? backoffDelay(attempt, this.backoff);
        this.log.warn(
          { registrationId: this.registrationId, property: key, version: change.version, attempt, delayMs, err: errorMessage(err) },
          "writable property handler failed for now; left pending and offered again",
        );
        const timer = setTimeout(() => {
          if (this.session === session) void this.enqueueWritable(session, change, attempt + 1);
        }, delayMs);
        timer.unref();
        return;
      }
      ack = { ac: 500, ad: errorMessage(err) };
    }
    if (this.session !== session) return; // dropped meanwhile: the next connection's twin read delivers it again
    try {
      // On the session, not through the public state: open() acknowledges pending properties before it says connected.
      await this.reportOn(session, writablePropertyAckPatch(change, ack));
      this.acknowledged.set(key, change.version);
    } catch (err) {
      this.log.warn(
        { registrationId: this.registrationId, property: key, version: change.version, err: errorMessage(err) },
        "writable property acknowledgement not sent",
      );
    }
  }

  // Commands ------------------------------------------------------------------------------------------------------

  /**
   * The SDK's transport emits one event per method name (`method_<name>`) and the Client only dispatches names
   * registered in advance; IoT Central's command names are not known in advance, so every `method_*` event of this
   * connection's transport is taken here.
   */
  private interceptMethods(session: Session): void {
    const transport = session.transport as unknown as { emit(event: string | symbol, ...args: unknown[]): boolean };
    const emit = transport.emit.bind(transport);
    transport.emit = (event: string | symbol, ...args: unknown[]) => {
      if (typeof event === "string" && event.startsWith("method_")) {
        this.onMethod(session, args[0] as { methods?: { methodName?: string }; requestId?: string; body?: Buffer });
        return true;
      }
      return emit(event, ...args);
    };
  }

  private onMethod(session: Session, message: { methods?: { methodName?: string }; requestId?: string; body?: Buffer }): void {
    const requestId = message.requestId;
    const methodName = message.methods?.methodName;
    if (typeof requestId !== "string" || typeof methodName !== "string") return;
    const { component, name } = splitCommandName(methodName);
    const parsed = parsePayload(message.body);
    let answered = false;
    const respond = async (status: number, payload?: unknown): Promise<void> => {
      if (!Number.isInteger(status) || status < 100 || status > 599)
        throw new IotcInvalidArgumentError("status", `must be an HTTP-like status from 100 to 599, got ${status}`);
      const value = payload === undefined ? null : payload;
      checkSize(Buffer.byteLength(toJson(value, "payload"), "utf8"), MAX_COMMAND_RESPONSE_BYTES, this.registrationId);
      if (answered) throw new IotcInvalidArgumentError("response", `command ${methodName} (${requestId}) was already answered`);
      answered = true;
      if (this.session !== session)
        throw new IotcNotConnectedError("the connection the command came on is gone; IoT Central has failed it", {
          registrationId: this.registrationId,
        });
      try {
        await withTimeout(
          callback((done) => session.transport.sendMethodResponse({ requestId, status, payload: value } as never, done)),
          this.settings.operationTimeoutMs,
          () => new IotcTimeoutError("command response not sent in time", { registrationId: this.registrationId }),
        );
      } catch (err) {
        throw hubError(err, session.observations, this.registrationId, "command response");
      }
    };
    const fail = (status: number, error: string) =>
      respond(status, { error }).catch((err) =>
        this.log.warn({ registrationId: this.registrationId, command: methodName, err: errorMessage(err) }, "command response failed"),
      );
    this.log.debug({ registrationId: this.registrationId, command: methodName, requestId }, "command received");
    if (!parsed.json) return void fail(400, "the command's payload is not JSON");
    const handler = this.handlers.command;
    if (!handler) return void fail(501, `no handler for commands on device ${this.registrationId}`);
    try {
      const returned: unknown = handler({
        requestId,
        ...(component === undefined ? {} : { component }),
        name,
        payload: parsed.value,
        deadline: new Date(Date.now() + this.settings.commandTimeoutMs),
        respond,
      });
      // An async handler returns a promise despite the void signature: its rejection answers 500 rather than going unheard.
      if (returned instanceof Promise) returned.catch((err: unknown) => (answered ? undefined : fail(500, errorMessage(err))));
    } catch (err) {
      if (!answered) void fail(500, errorMessage(err));
    }
  }

  // Offline commands ----------------------------------------------------------------------------------------------

  /** mqtt.js asks before it PUBACKs a QoS 1 message: cloud-to-device messages wait for the handler. */
  private holdInbound(session: Session, topic: string): Promise<boolean> | undefined {
    if (!/^devices\/[^/]+\/messages\/devicebound\//.test(topic)) return undefined;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        session.c2dPending = undefined;
        this.log.warn(
          { registrationId: this.registrationId, timeoutMs: this.settings.offlineCommandTimeoutMs },
          "offline command not handled in time; left for redelivery",
        );
        resolve(false);
      }, this.settings.offlineCommandTimeoutMs);
      session.c2dPending = (ack) => {
        clearTimeout(timer);
        resolve(ack);
      };
    });
  }

  private async onCloudToDevice(session: Session, message: Message): Promise<void> {
    const settle = session.c2dPending ?? (() => {});
    session.c2dPending = undefined;
    const properties: Record<string, string> = {};
    for (const p of (message.properties as unknown as { propertyList: { key: string; value: string }[] }).propertyList ?? [])
      properties[p.key] = String(p.value);
    const methodName = properties[OFFLINE_COMMAND_PROPERTY];
    const messageId = typeof message.messageId === "string" ? message.messageId : undefined;
    if (!methodName) {
      this.log.warn({ registrationId: this.registrationId, messageId }, "cloud-to-device message without method-name dropped");
      settle(true);
      return;
    }
    const handler = this.handlers.offlineCommand;
    if (!handler) {
      this.log.warn({ registrationId: this.registrationId, command: methodName }, "no offline command handler; command dropped");
      settle(true);
      return;
    }
    const { component, name } = offlineCommandName(methodName);
    const data = message.data as Buffer | string | undefined;
    try {
      await handler({
        ...(messageId === undefined ? {} : { messageId }),
        ...(component === undefined ? {} : { component }),
        name,
        payload: parsePayload(data).value,
        properties,
      });
      settle(true);
    } catch (err) {
      this.log.warn(
        { registrationId: this.registrationId, command: methodName, err: errorMessage(err) },
        "offline command handler failed; left for redelivery",
      );
      settle(false);
    }
  }
}

function twinOrHub(err: unknown, observations: WireObservations, registrationId: string): IotcError {
  return observations.twinStatus !== undefined && observations.twinStatus >= 400
    ? twinError(err, observations, registrationId, "twin request")
    : hubError(err, observations, registrationId, "connection");
}

/** An IoT Central device (not yet connected: call open()). Bad options are an IotcInvalidArgumentError naming them. */
export function createIotcDevice(options: IotcDeviceOptions): IotcDevice {
  return new IotcDeviceClient(options);
}
