/**
 * Shared access signatures as DPS and IoT Hub check them (protocol notes 1.6, 1.7, 2.2). Clients differ in how they
 * write `sr` (Node leaves the DPS resource raw and percent-encodes the hub one, Python and C encode both, in either
 * letter case), so a token is checked against each spelling of the resource it could have signed.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export interface SasToken {
  /** The resource exactly as written in the token. */
  sr: string;
  /** Signature bytes (base64 after URL-decoding). */
  sig: Buffer;
  /** Expiry, unix seconds. */
  se: number;
  skn?: string;
}

/** Longest password looked at: a real token is ~200 characters. */
const MAX_TOKEN_LENGTH = 4096;

/** `SharedAccessSignature sr=..&sig=..&se=..[&skn=..]`, fields in any order; undefined when not of that shape. */
export function parseSasToken(password: string): SasToken | undefined {
  if (password.length > MAX_TOKEN_LENGTH) return undefined;
  const space = password.indexOf(" ");
  if (space < 0 || password.slice(0, space) !== "SharedAccessSignature") return undefined;
  const fields = new Map<string, string>();
  for (const part of password.slice(space + 1).split("&")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const sr = fields.get("sr");
  const sig = fields.get("sig");
  const se = Number(fields.get("se"));
  if (!sr || !sig || !Number.isInteger(se)) return undefined;
  let sigBytes: Buffer;
  try {
    sigBytes = Buffer.from(decodeURIComponent(sig), "base64");
  } catch {
    return undefined;
  }
  const skn = fields.get("skn");
  return { sr, sig: sigBytes, se, ...(skn === undefined ? {} : { skn }) };
}

/** HMAC-SHA256 over `resource\nexpiry` with the base64 key: what a device signs. */
export function sign(key: string, resource: string, se: number): Buffer {
  return createHmac("sha256", Buffer.from(key, "base64")).update(`${resource}\n${se}`).digest();
}

/** The device key of a registration id in a symmetric-key enrollment group. */
export function deriveDeviceKey(groupKey: string, registrationId: string): string {
  return createHmac("sha256", Buffer.from(groupKey, "base64")).update(registrationId, "utf8").digest("base64");
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** encodeURIComponent plus `!'()*`, as the Node SDK writes a hub resource. */
function strictEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export type SasCheck = { ok: true } | { ok: false; reason: string };

/**
 * Whether `token` grants `resource` (compared decoded, in any letter case) with `key`, and is not expired at `nowMs`.
 * `skn` must be `expectedSkn` (DPS: "registration"; the hub: absent, device keys carry none).
 */
export function checkSasToken(token: SasToken, key: string, resource: string, nowMs: number, expectedSkn: string | undefined): SasCheck {
  if (token.skn !== expectedSkn && !(expectedSkn === undefined && token.skn === "")) {
    return { ok: false, reason: `skn must be ${expectedSkn ?? "absent"}` };
  }
  if (safeDecode(token.sr).toLowerCase() !== resource.toLowerCase()) {
    return { ok: false, reason: "sr names another resource" };
  }
  if (token.se * 1000 < nowMs) return { ok: false, reason: "token expired" };
  const decoded = safeDecode(token.sr);
  const spellings = new Set([
    token.sr,
    decoded,
    encodeURIComponent(decoded),
    encodeURIComponent(decoded).toLowerCase(),
    strictEncode(decoded),
  ]);
  for (const spelling of spellings) {
    const expected = sign(key, spelling, token.se);
    if (expected.length === token.sig.length && timingSafeEqual(expected, token.sig)) return { ok: true };
  }
  return { ok: false, reason: "signature does not match" };
}

/** A token as a device would write it; tests and the admin surface use it. */
export function createSasToken(key: string, resource: string, se: number, skn?: string): string {
  const sig = encodeURIComponent(sign(key, resource, se).toString("base64"));
  return `SharedAccessSignature sr=${resource}&sig=${sig}&se=${se}${skn === undefined ? "" : `&skn=${skn}`}`;
}
