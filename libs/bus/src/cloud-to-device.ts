import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type Command,
  type CommandResponse,
  CommandResponseSchema,
  CommandSchema,
  type WritablePropertyUpdate,
  WritablePropertyUpdateSchema,
} from "@meridian/contracts/meridian/command/v1/command_pb";
import { commandSubject, encodeToken, writablePropertySubject } from "./subjects.js";

/**
 * The cloud-to-device messages on the bus (meridian.command.v1): commands and writable-property updates are stored in
 * the CLOUD_TO_DEVICE stream; command responses travel on core NATS only, since their life ends with the command's
 * deadline. The Bus methods (publishCommand, watchCommands, respondToCommand, commandResponses, ...) use these.
 */

export const COMMAND_SCHEMA = CommandSchema.typeName;
export const COMMAND_RESPONSE_SCHEMA = CommandResponseSchema.typeName;
export const WRITABLE_PROPERTY_UPDATE_SCHEMA = WritablePropertyUpdateSchema.typeName;

/** A platform's request ids are not ours to trust for length: one that would not fit a subject comfortably is refused. */
export const MAX_REQUEST_ID_LENGTH = 256;

/** A command response as it reached the instance that may hold its command. */
export interface CommandResponseMessage {
  /** The connection (IoT Central: application id) of the response's subject. */
  connection: string;
  response: CommandResponse;
  /**
   * Tells the one who sent it (respondToCommand waits for this) whether the response reached the platform. Only the
   * instance holding the command answers; the others stay silent. A no-op for a response published without a reply.
   */
  answer(delivered: boolean): void;
}

/** Thrown before publishing a cloud-to-device message that lacks what its subject or dedupe id is made of. */
export class InvalidCloudToDeviceMessageError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = "InvalidCloudToDeviceMessageError";
  }
}

function requireTarget(target: Command["target"], field: string): NonNullable<Command["target"]> {
  if (!target) throw new InvalidCloudToDeviceMessageError(field, "required");
  if (!target.connection) throw new InvalidCloudToDeviceMessageError(`${field}.connection`, "required");
  if (!target.device) throw new InvalidCloudToDeviceMessageError(`${field}.device`, "required");
  return target;
}

function requireRequestId(requestId: string): void {
  if (!requestId) throw new InvalidCloudToDeviceMessageError("request_id", "required");
  if (requestId.length > MAX_REQUEST_ID_LENGTH) {
    throw new InvalidCloudToDeviceMessageError("request_id", `longer than ${MAX_REQUEST_ID_LENGTH} characters`);
  }
}

/** Where a command goes, checked: request id, target and name are what its subject and dedupe id are made of. */
export function commandAddress(cmd: Command): { subject: string; msgId: string } {
  requireRequestId(cmd.requestId);
  const target = requireTarget(cmd.target, "target");
  if (!cmd.name) throw new InvalidCloudToDeviceMessageError("name", "required");
  const subject = commandSubject(target.platform, target.connection, target.device, cmd.name);
  // Scoped by the subject: a platform's request ids need only be unique per device, and the ids of two platforms may meet.
  return { subject, msgId: `${subject}:${encodeToken(cmd.requestId)}` };
}

/**
 * Where a writable-property update goes, checked. Its dedupe id is device, component, name and desired version: the
 * same change seen again (a twin read after a reconnect re-delivers it) within the stream's duplicate window is stored once.
 */
export function writablePropertyAddress(u: WritablePropertyUpdate): { subject: string; msgId: string } {
  const target = requireTarget(u.target, "target");
  if (!u.name) throw new InvalidCloudToDeviceMessageError("name", "required");
  const subject = writablePropertySubject(target.platform, target.connection, target.device);
  return { subject, msgId: `${subject}:${encodeToken(u.component)}:${encodeToken(u.name)}:${u.version}` };
}

export function checkCommandResponse(response: CommandResponse): void {
  requireRequestId(response.requestId);
}

export const encodeCommand = (cmd: Command): Uint8Array => toBinary(CommandSchema, cmd);
export const decodeCommand = (data: Uint8Array): Command => fromBinary(CommandSchema, data);
export const encodeCommandResponse = (r: CommandResponse): Uint8Array => toBinary(CommandResponseSchema, r);
export const decodeCommandResponse = (data: Uint8Array): CommandResponse => fromBinary(CommandResponseSchema, data);
export const encodeWritablePropertyUpdate = (u: WritablePropertyUpdate): Uint8Array => toBinary(WritablePropertyUpdateSchema, u);
export const decodeWritablePropertyUpdate = (data: Uint8Array): WritablePropertyUpdate => fromBinary(WritablePropertyUpdateSchema, data);

/** The holder's answer to a response sent with a reply subject: one byte, 1 delivered, 0 not. */
export function encodeDelivered(delivered: boolean): Uint8Array {
  return Uint8Array.of(delivered ? 1 : 0);
}

export function decodeDelivered(data: Uint8Array): boolean {
  return data.length === 1 && data[0] === 1;
}
