import { create, toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type Bus, BusUnavailableError, MAX_REQUEST_ID_LENGTH } from "@meridian/bus";
import {
  type IotcBridgeService,
  WatchCommandsResponseSchema,
  WatchPropertiesResponseSchema,
} from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { callerOf } from "@meridian/service-kit";
import { type CloudToDevice, MAX_COMMAND_RESPONSE_BYTES } from "../pipeline/cloud-to-device.js";
import { Violations } from "./validation.js";

export interface CommandHandlerDeps {
  cloudToDevice: Pick<CloudToDevice, "respond">;
  bus: Bus;
  applications: { has(id: string): Promise<boolean> };
}

export type CommandHandlers = Pick<ServiceImpl<typeof IotcBridgeService>, "watchCommands" | "respondCommand" | "watchProperties">;

/**
 * WatchCommands, RespondCommand and WatchProperties. Errors: a bad request is invalid_argument naming the field and an
 * unknown application not_found (ConnectError, thrown here); the bus's own errors (BusUnavailableError: unavailable)
 * are left to the starter's bus error table. A response that comes too late is `delivered: false`, not an error.
 */
export function commandHandlers({ cloudToDevice, bus, applications }: CommandHandlerDeps): CommandHandlers {
  async function known(applicationId: string): Promise<void> {
    if (applicationId && !(await applications.has(applicationId))) {
      throw new ConnectError(`application "${applicationId}" not found`, Code.NotFound);
    }
  }

  /** An optional filter: empty application or device means every one. */
  function validateFilter(req: { applicationId: string; deviceId: string; startTime?: Timestamp }): void {
    const v = new Violations();
    if (req.applicationId) v.applicationId("application_id", req.applicationId);
    if (req.deviceId) v.deviceId("device_id", req.deviceId);
    v.time("start_time", req.startTime);
    v.throwIfAny();
  }

  const from = (req: { startTime?: Timestamp }, ctx: HandlerContext) => ({
    signal: ctx.signal,
    ...(req.startTime ? { startTime: timestampDate(req.startTime) } : {}),
  });

  /** Follows a bus watch until the caller leaves or the server stops; then the stream simply ends. */
  async function* follow<T, R>(items: AsyncIterable<T>, ctx: HandlerContext, wrap: (item: T) => R): AsyncGenerator<R> {
    try {
      for await (const item of items) yield wrap(item);
    } catch (err) {
      if (ctx.signal.aborted) return;
      throw err;
    }
  }

  const filter = (req: { applicationId: string; deviceId: string }) => ({
    platform: Platform.IOT_CENTRAL,
    ...(req.applicationId ? { connection: req.applicationId } : {}),
    ...(req.deviceId ? { device: req.deviceId } : {}),
  });

  return {
    async *watchCommands(req, ctx) {
      validateFilter(req);
      await known(req.applicationId);
      if (!bus.connected) throw new BusUnavailableError();
      yield* follow(bus.watchCommands(filter(req), from(req, ctx)), ctx, (command) => create(WatchCommandsResponseSchema, { command }));
    },

    async respondCommand(req, ctx) {
      const v = new Violations();
      v.applicationId("application_id", req.applicationId);
      if (req.requestId === "") v.add("request_id", "is required");
      else if (req.requestId.length > MAX_REQUEST_ID_LENGTH) v.add("request_id", `longer than ${MAX_REQUEST_ID_LENGTH} characters`);
      else if (/\p{Cc}/u.test(req.requestId)) v.add("request_id", "must not contain control characters");
      v.range("status", req.status, 200, 599);
      const payload = req.payload ? toJson(ValueSchema, req.payload) : null;
      const bytes = Buffer.byteLength(JSON.stringify(payload));
      if (bytes > MAX_COMMAND_RESPONSE_BYTES) {
        v.add("payload", `is ${bytes} bytes as JSON, over IoT Hub's ${MAX_COMMAND_RESPONSE_BYTES}-byte limit of a command response`);
      }
      v.throwIfAny();
      await known(req.applicationId);
      const responder = callerOf(ctx).name || "anonymous";
      const { delivered } = await cloudToDevice.respond(req.applicationId, req.requestId, req.status ?? 200, payload, responder);
      return { delivered };
    },

    async *watchProperties(req, ctx) {
      validateFilter(req);
      await known(req.applicationId);
      if (!bus.connected) throw new BusUnavailableError();
      yield* follow(bus.watchWritableProperties(filter(req), from(req, ctx)), ctx, (update) =>
        create(WatchPropertiesResponseSchema, { update }),
      );
    },
  };
}
