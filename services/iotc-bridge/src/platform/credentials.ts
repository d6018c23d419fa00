import { createHmac } from "node:crypto";
import { IotcInvalidArgumentError } from "./errors.js";

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The bytes of a base64 SAS key; IotcInvalidArgumentError (never quoting the key) when it is not base64. */
export function decodeSasKey(key: string, field: string): Buffer {
  if (typeof key !== "string" || key.length === 0) throw new IotcInvalidArgumentError(field, "must not be empty");
  if (key.length > 1024) throw new IotcInvalidArgumentError(field, "is longer than any SAS key (1024 characters)");
  if (!BASE64.test(key)) throw new IotcInvalidArgumentError(field, "is not base64");
  const bytes = Buffer.from(key, "base64");
  if (bytes.length < 16) throw new IotcInvalidArgumentError(field, `is ${bytes.length} bytes, a SAS key has at least 16`);
  return bytes;
}

/**
 * An enrollment group member's device key: base64(HMAC-SHA256(key = base64decode(groupKey), utf8(registrationId))),
 * what DPS, IoT Central and both iotc clients compute, so a group key never has to leave the bridge's store.
 */
export function deriveDeviceKey(groupKey: string, registrationId: string): string {
  const key = decodeSasKey(groupKey, "groupKey");
  if (typeof registrationId !== "string" || registrationId.length === 0)
    throw new IotcInvalidArgumentError("registrationId", "must not be empty");
  return createHmac("sha256", key).update(registrationId, "utf8").digest("base64");
}
