import { IotcInvalidArgumentError } from "./errors.js";

/** DPS's longest registration id. */
export const MAX_REGISTRATION_ID_LENGTH = 128;

const ALLOWED = /^[a-z0-9\-._:]$/;
const LAST_ALLOWED = /^[a-z0-9-]$/;

/**
 * Throws IotcInvalidArgumentError naming what DPS would refuse: a registration id is 1..128 characters of lower-case
 * alphanumerics and '-', '.', '_', ':', and (DPS documentation) ends with an alphanumeric or '-'.
 */
export function validateRegistrationId(id: string, field = "registrationId"): void {
  if (typeof id !== "string" || id.length === 0) throw new IotcInvalidArgumentError(field, "must not be empty");
  if (id.length > MAX_REGISTRATION_ID_LENGTH)
    throw new IotcInvalidArgumentError(field, `is ${id.length} characters, DPS accepts at most ${MAX_REGISTRATION_ID_LENGTH}`);
  for (let i = 0; i < id.length; i++) {
    const c = id[i]!;
    if (!ALLOWED.test(c))
      throw new IotcInvalidArgumentError(
        field,
        `character ${JSON.stringify(c)} at position ${i} is not accepted by DPS (lower-case alphanumerics, '-', '.', '_', ':')`,
      );
  }
  if (!LAST_ALLOWED.test(id[id.length - 1]!)) throw new IotcInvalidArgumentError(field, "must end with a lower-case alphanumeric or '-'");
}

export interface NormalisedRegistrationId {
  registrationId: string;
  /** What was changed, in words (empty when the input was already acceptable), for a log line or an API answer. */
  changes: string[];
}

/**
 * Turns any name into a registration id DPS accepts: trimmed, lower-cased, every other character replaced by '-',
 * cut to 128 characters, trailing '.', '_', ':' removed. Throws IotcInvalidArgumentError when nothing usable is left.
 */
export function normaliseRegistrationId(raw: string, field = "registrationId"): NormalisedRegistrationId {
  if (typeof raw !== "string") throw new IotcInvalidArgumentError(field, "must be a string");
  const changes: string[] = [];
  let id = raw.trim();
  if (id !== raw) changes.push("surrounding white space removed");
  const lower = id.toLowerCase();
  if (lower !== id) changes.push("lower-cased");
  id = lower;
  let replaced = 0;
  let out = "";
  // Code points, so that one emoji becomes one '-', not two.
  for (const c of id) {
    if (ALLOWED.test(c)) out += c;
    else {
      out += "-";
      replaced++;
    }
  }
  if (replaced > 0) changes.push(`${replaced} character${replaced === 1 ? "" : "s"} DPS does not accept replaced by '-'`);
  id = out;
  if (id.length > MAX_REGISTRATION_ID_LENGTH) {
    changes.push(`cut from ${id.length} to ${MAX_REGISTRATION_ID_LENGTH} characters`);
    id = id.slice(0, MAX_REGISTRATION_ID_LENGTH);
  }
  const trimmedEnd = id.replace(/[._:]+$/, "");
  if (trimmedEnd !== id) {
    changes.push("trailing '.', '_' or ':' removed");
    id = trimmedEnd;
  }
  if (id.length === 0 || /^-+$/.test(id))
    throw new IotcInvalidArgumentError(field, `${JSON.stringify(raw)} has no character a registration id can be made of`);
  return { registrationId: id, changes };
}
