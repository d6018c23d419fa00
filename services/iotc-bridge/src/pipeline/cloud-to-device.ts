import { randomUUID } from "node:crypto";
import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate, timestampNow, type Value, ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type Bus,
  type CommandResponseMessage,
  InvalidCloudToDeviceMessageError,
  MAX_REQUEST_ID_LENGTH,
  MessageTooLargeError,
} from "@meridian/bus";
import { CommandResponseSchema, CommandSchema, WritablePropertyUpdateSchema } from "@meridian/contracts/meridian/command/v1/command_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { backoffDelay, MAX_TIMER_MS, sleep } from "@meridian/retry";
import type { Logger } from "pino";
import type {
  DeviceHandlers,
  DirectMethodRequest,
  OfflineCommand,
  WritablePropertyAck,
  WritablePropertyChange,
} from "../platform/types.js";

export interface CloudToDeviceOptions {
  bus: Bus;
  logger: Logger;
  /** This instance's name (responder of the answers it makes itself: timeouts, refusals), for the logs. */
  instance: string;
}

/** IoT Hub's limit of a direct method's response payload. */
export const MAX_COMMAND_RESPONSE_BYTES = 128 * 1024;
/**
 * Commands one instance holds while the plant answers. IoT Hub throttles direct methods long before this (160 KB/s per
 * S1 unit); past it a command is refused with 503 instead of holding memory and timers without bound.
 */
export const MAX_PENDING_COMMANDS = 10_000;
/** How long stop() gives the device connections to take the 503 of the commands still waiting. */
const STOP_ANSWER_MS = 2000;
/** Where offline commands that can never be stored go (deadletter.v1.iotc-bridge). */
export const DEAD_LETTER_CONSUMER = "iotc-bridge";

const RESUBSCRIBE_BACKOFF = { initialMs: 250, maxMs: 10_000, multiplier: 2, jitter: 0.3 };

interface PendingCommand {
  applicationId: string;
  deviceId: string;
  requestId: string;
  request: DirectMethodRequest;
  receivedAt: number;
  timer: NodeJS.Timeout;
}

/** A JSON value as google.protobuf.Value; undefined (no payload) is null, and what is not JSON is taken as JSON.stringify sees it. */
function toValue(json: unknown): Value {
  try {
    return fromJson(ValueSchema, (json ?? null) as JsonValue);
  } catch {
    return fromJson(ValueSchema, JSON.parse(JSON.stringify(json) ?? "null") as JsonValue);
  }
}

function jsonBytes(json: unknown): number {
  return Buffer.byteLength(JSON.stringify(json ?? null));
}

function seconds(ms: number): string {
  return ms >= 10_000 ? String(Math.round(ms / 1000)) : String(Math.round(ms / 100) / 10);
}

/**
 * IoT Central to the plant over the bus: commands (direct methods), offline commands (cloud-to-device messages) and
 * writable-property changes of the devices this instance acts as become meridian.command.v1 messages on the bus, and
 * command responses from the plant (through any instance, or published on the bus directly) go back to IoT Hub.
 *
 * A direct method waits here, in memory, until its first response or its deadline: it lives on one MQTT connection,
 * which only this instance has. Other instances' RespondCommand calls reach it over core NATS.
 */
export class CloudToDevice {
  private readonly bus: Bus;
  private readonly log: Logger;
  private readonly instance: string;
  private readonly pending = new Map<string, PendingCommand>();
  private readonly stopping = new AbortController();

  constructor(options: CloudToDeviceOptions) {
    this.bus = options.bus;
    this.instance = options.instance;
    this.log = options.logger.child({ component: "cloud-to-device" });
  }

  /** The DeviceHandlers parts for one device; `ack` is the application's WritablePropertyAck setting ("completed" | "accepted"). */
  handlers(
    applicationId: string,
    deviceId: string,
    ack: "completed" | "accepted",
  ): Pick<DeviceHandlers, "writableProperty" | "command" | "offlineCommand"> {
    return {
      writableProperty: (change) => this.writableProperty(applicationId, deviceId, ack, change),
      command: (request) => this.command(applicationId, deviceId, request),
      offlineCommand: (command) => this.offlineCommand(applicationId, deviceId, command),
    };
  }

  /** Commands waiting for the plant's response on this instance. */
  get pendingCommands(): number {
    return this.pending.size;
  }

  /**
   * Stores the change on the bus, then resolves with the acknowledgement IoT Central gets: 200 "completed" with the
   * desired value, or 202 "accepted by Meridian" (the plant reports the value it applied itself).
   *
   * Failure mode: when the bus cannot store the change this REJECTS, and the change must stay unacknowledged, so that
   * IoT Central keeps showing it pending and the device's next twin reconciliation (after a reconnect: every desired
   * property newer than its reported `av`) hands it over again. An ac 500 instead would record `av` = this version and
   * the change would never be offered again.
   */
  private async writableProperty(
    applicationId: string,
    deviceId: string,
    ack: "completed" | "accepted",
    change: WritablePropertyChange,
  ): Promise<WritablePropertyAck> {
    if (!Number.isSafeInteger(change.version))
      throw new RangeError(`desired $version ${change.version} of ${change.name} is not an integer`);
    await this.bus.publishWritablePropertyUpdate(
      create(WritablePropertyUpdateSchema, {
        target: { platform: Platform.IOT_CENTRAL, connection: applicationId, device: deviceId },
        component: change.component ?? "",
        name: change.name,
        value: toValue(change.value),
        version: BigInt(change.version),
        receivedTime: timestampNow(),
      }),
    );
    return ack === "completed" ? { ac: 200, ad: "completed", value: change.value } : { ac: 202, ad: "accepted by Meridian" };
  }

  /**
   * Publishes the command with the request's deadline and holds it until the first response for its request id, or
   * answers 504 at the deadline. A bus that cannot take it is 503 at once: IoT Central then shows the command failed
   * instead of waiting 30 s for nothing. Never throws (the device client does not await it).
   */
  private command(applicationId: string, deviceId: string, request: DirectMethodRequest): void {
    const refuse = (status: number, error: string) => {
      this.log.warn({ applicationId, deviceId, command: request.name, rid: request.requestId, status, error }, "command refused");
      void this.answer(request, status, { error }, { applicationId, deviceId });
    };
    if (this.stopping.signal.aborted) {
      refuse(503, "Meridian is shutting down");
      return;
    }
    if (!this.bus.connected) {
      refuse(503, "Meridian's event bus is unavailable; the command did not reach the plant");
      return;
    }
    if (this.pending.size >= MAX_PENDING_COMMANDS) {
      refuse(503, `Meridian holds ${MAX_PENDING_COMMANDS} commands waiting for the plant`);
      return;
    }

    // IoT Hub's request ids count per connection ($rid): the bus needs one unique across devices and restarts.
    const requestId = randomUUID();
    const receivedAt = Date.now();
    const waitMs = Math.min(MAX_TIMER_MS, Math.max(0, request.deadline.getTime() - receivedAt));
    const entry: PendingCommand = {
      applicationId,
      deviceId,
      requestId,
      request,
      receivedAt,
      timer: setTimeout(() => this.timeout(entry), waitMs),
    };
    // Held before it is published: a plant that answers at once must find it.
    this.pending.set(pendingKey(applicationId, requestId), entry);
    const log = { applicationId, deviceId, command: request.name, component: request.component, requestId, rid: request.requestId };
    let published: Promise<unknown>;
    try {
      published = this.bus.publishCommand(
        create(CommandSchema, {
          requestId,
          target: { platform: Platform.IOT_CENTRAL, connection: applicationId, device: deviceId },
          component: request.component ?? "",
          name: request.name,
          payload: toValue(request.payload),
          receivedTime: timestampFromDate(new Date(receivedAt)),
          deadline: timestampFromDate(request.deadline),
        }),
      );
    } catch (err) {
      // A payload JSON cannot express: the device client hands parsed JSON, so this is a bug there.
      this.take(entry);
      refuse(400, `Meridian could not read the command's payload: ${(err as Error).message}`);
      return;
    }
    published.then(
      () => this.log.debug({ ...log, waitMs }, "command published; waiting for the plant"),
      (err: unknown) => {
        if (!this.take(entry)) return;
        const invalid = err instanceof InvalidCloudToDeviceMessageError || err instanceof MessageTooLargeError;
        this.log.warn({ ...log, err }, "command not published");
        void this.answer(
          request,
          invalid ? 400 : 503,
          { error: `Meridian could not pass the command to the plant: ${(err as Error).message}` },
          { applicationId, deviceId },
        );
      },
    );
  }

  /**
   * Publishes the offline command (no deadline, no response) and resolves once the bus stored it; the device client
   * completes the cloud-to-device message only then, so a rejection (bus down) leaves it to be delivered again. One
   * that can never be stored (no name, too large) is dead-lettered instead, since delivering it again cannot help.
   */
  private async offlineCommand(applicationId: string, deviceId: string, command: OfflineCommand): Promise<void> {
    // The message id makes a redelivery a duplicate; without one (or an absurd one) each delivery is its own command.
    const messageId = command.messageId && command.messageId.length <= MAX_REQUEST_ID_LENGTH ? command.messageId : undefined;
    const cmd = create(CommandSchema, {
      requestId: messageId ?? randomUUID(),
      target: { platform: Platform.IOT_CENTRAL, connection: applicationId, device: deviceId },
      component: command.component ?? "",
      name: command.name,
      payload: toValue(command.payload),
      offline: true,
      receivedTime: timestampNow(),
      properties: command.properties,
    });
    try {
      await this.bus.publishCommand(cmd);
    } catch (err) {
      if (!(err instanceof InvalidCloudToDeviceMessageError || err instanceof MessageTooLargeError)) throw err;
      await this.bus.publishDeadLetter({
        consumer: DEAD_LETTER_CONSUMER,
        data: Buffer.from(JSON.stringify({ applicationId, deviceId, command })),
        reason: "offline command cannot be stored on the bus",
        detail: err.message,
        ...(messageId ? { msgId: `offline:${applicationId}:${deviceId}:${messageId}` } : {}),
      });
      this.log.error({ applicationId, deviceId, command: command.name, messageId, err }, "offline command dead-lettered");
      return;
    }
    this.log.debug({ applicationId, deviceId, command: command.name, requestId: cmd.requestId }, "offline command stored");
  }

  /** Answers a pending command held by this instance or publishes the response for the instance that holds it. */
  async respond(
    applicationId: string,
    requestId: string,
    status: number,
    payload: unknown,
    responder: string,
  ): Promise<{ delivered: boolean }> {
    const entry = this.pending.get(pendingKey(applicationId, requestId));
    if (entry && this.take(entry)) return { delivered: await this.deliver(entry, status, payload, responder) };
    return this.bus.respondToCommand(
      Platform.IOT_CENTRAL,
      applicationId,
      create(CommandResponseSchema, { requestId, status, payload: toValue(payload), responder }),
    );
  }

  /**
   * Takes the command responses of every application from the bus until the signal aborts or stop(): the ones for
   * commands held here go to IoT Hub, the others are someone else's. The subscription is made when this is called
   * (when the bus is up; otherwise it is retried), so it may be started without awaiting it.
   */
  async run(signal: AbortSignal): Promise<void> {
    const stop = AbortSignal.any([signal, this.stopping.signal]);
    for (let failures = 0; !stop.aborted; ) {
      try {
        for await (const m of this.bus.commandResponses(Platform.IOT_CENTRAL, undefined, stop)) {
          failures = 0;
          void this.onResponse(m);
        }
        if (stop.aborted) return;
        // The subscription ended without being asked (the connection closed): subscribe again.
      } catch (err) {
        failures++;
        if (failures === 1 || failures % 10 === 0) this.log.warn({ err, failures }, "cannot subscribe to command responses; retrying");
      }
      try {
        await sleep(backoffDelay(Math.max(1, failures), RESUBSCRIBE_BACKOFF), stop);
      } catch {
        return;
      }
    }
  }

  /** Stops taking responses and answers the commands still waiting with 503 (their devices may still be connected). */
  async stop(): Promise<void> {
    this.stopping.abort();
    const left = [...this.pending.values()].filter((e) => this.take(e));
    if (left.length === 0) return;
    this.log.info({ commands: left.length }, "answering the commands still waiting with 503");
    const answered = Promise.all(
      left.map((e) =>
        this.answer(
          e.request,
          503,
          { error: "Meridian stopped before the plant answered" },
          { applicationId: e.applicationId, deviceId: e.deviceId },
        ),
      ),
    );
    await Promise.race([answered, sleep(STOP_ANSWER_MS).catch(() => {})]);
  }

  private async onResponse(m: CommandResponseMessage): Promise<void> {
    const entry = this.pending.get(pendingKey(m.connection, m.response.requestId));
    // Not held here: another instance holds it, or it was answered or timed out; the sender learns that from whoever holds it.
    if (!entry || !this.take(entry)) return;
    const r = m.response;
    // proto3 cannot tell an unset status from 0: a plant that sets none means done.
    const status = r.status === 0 ? 200 : r.status;
    const payload = r.payload ? toJson(ValueSchema, r.payload) : null;
    m.answer(await this.deliver(entry, status, payload, r.responder));
  }

  /** Hands the plant's response to IoT Hub; true when the device connection took it. */
  private async deliver(entry: PendingCommand, status: number, payload: unknown, responder: string): Promise<boolean> {
    const log = { applicationId: entry.applicationId, deviceId: entry.deviceId, requestId: entry.requestId, status, responder };
    const bytes = jsonBytes(payload);
    if (bytes > MAX_COMMAND_RESPONSE_BYTES) {
      this.log.warn({ ...log, bytes }, "the plant's response is over IoT Hub's limit; answered 500 instead");
      await this.answer(
        entry.request,
        500,
        { error: `the plant's response is ${bytes} bytes, over IoT Hub's ${MAX_COMMAND_RESPONSE_BYTES}-byte limit` },
        log,
      );
      return false;
    }
    try {
      await entry.request.respond(status, payload);
      this.log.info({ ...log, ms: Date.now() - entry.receivedAt }, "command answered");
      return true;
    } catch (err) {
      this.log.warn({ ...log, err }, "the device connection did not take the command's response");
      return false;
    }
  }

  private timeout(entry: PendingCommand): void {
    if (!this.take(entry)) return;
    const waited = seconds(entry.request.deadline.getTime() - entry.receivedAt);
    const log = { applicationId: entry.applicationId, deviceId: entry.deviceId, requestId: entry.requestId };
    this.log.info({ ...log, instance: this.instance, waitedSeconds: Number(waited) }, "command timed out: no response from the plant");
    void this.answer(entry.request, 504, { error: `no response from the plant within ${waited} s` }, log);
  }

  /** Removes a pending command; false when it was no longer pending (answered or timed out already): the first answer wins. */
  private take(entry: PendingCommand): boolean {
    const key = pendingKey(entry.applicationId, entry.requestId);
    if (this.pending.get(key) !== entry) return false;
    this.pending.delete(key);
    clearTimeout(entry.timer);
    return true;
  }

  /** An answer this instance makes itself; the device connection may be gone, which is only worth a log line. */
  private async answer(request: DirectMethodRequest, status: number, payload: unknown, log: object): Promise<void> {
    try {
      await request.respond(status, payload);
    } catch (err) {
      this.log.debug({ ...log, status, err, instance: this.instance }, "the device connection did not take the answer");
    }
  }
}

function pendingKey(applicationId: string, requestId: string): string {
  return `${applicationId}\n${requestId}`;
}
