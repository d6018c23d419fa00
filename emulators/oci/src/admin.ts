/**
 * The `/_emulator` admin surface (emulator kit): state, faults (per listener and operation), reset, the CA, vault
 * secrets, ingest as a device, data-API token lifetime, minting tokens (expired or of another scope) and the clock.
 */
import { BadRequestError, createAdminSurface, EmulatorHttpError } from "@meridian/emulator-kit";
import type { Logger } from "@meridian/service-kit";
import type { OciEmulator } from "./emulator.js";
import { type OciFaultConfig, type OciFaults, parseOciFaultConfig } from "./faults.js";

function str(body: Record<string, unknown>, field: string, optional = false, max = 4096): string | undefined {
  const v = body[field];
  if (v === undefined && optional) return undefined;
  if (typeof v !== "string" || v.length === 0 || v.length > max)
    throw new BadRequestError(field, `${field} must be a string of 1..${max} characters`);
  return v;
}

function int(body: Record<string, unknown>, field: string, min: number, max: number, optional = false): number | undefined {
  const v = body[field];
  if (v === undefined && optional) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw new BadRequestError(field, `${field} must be an integer in ${min}..${max}`);
  return v;
}

export function createAdmin(emulator: () => OciEmulator, faults: OciFaults, caPem: string | undefined, log: Logger) {
  return createAdminSurface<OciFaultConfig>({
    state: () => emulator().state(),
    reset: () => {
      emulator().reset();
      return { reset: true };
    },
    faults: {
      parse: (body) => parseOciFaultConfig(body),
      add: (f) => ({ faults: faults.set(f) }),
      replace: (f) => ({ faults: faults.replace(f) }),
      list: () => ({ faults: faults.list() }),
      clear: () => {
        faults.clear();
        return { faults: faults.list() };
      },
    },
    caPem: () => caPem,
    logger: log,
    routes: [
      {
        method: "POST",
        path: "vault-secrets",
        handle: (r) => {
          const body = r.json();
          const authId = str(body, "authId", false, 255)!;
          emulator().addVaultSecret(authId, str(body, "plaintext", false, 4096)!);
          return { authId };
        },
      },
      {
        method: "POST",
        path: "ingest",
        handle: (r) => {
          const body = r.json();
          const externalKey = str(body, "externalKey", false, 255)!;
          const endpoint = str(body, "endpoint", true, 1024);
          const contentType = str(body, "contentType", true, 255);
          if (!("payload" in body)) throw new BadRequestError("payload", "payload is required (any JSON value, or a string sent as text)");
          try {
            return emulator().ingest(externalKey, body.payload, { endpoint, contentType });
          } catch (err) {
            if (err instanceof UnknownDeviceError) throw new EmulatorHttpError(404, err.message);
            throw err;
          }
        },
      },
      {
        method: "PUT",
        path: "token-lifetime",
        handle: (r) => ({ tokenLifetimeSeconds: emulator().setTokenLifetime(int(r.json(), "seconds", 1, 86_400)!) }),
      },
      {
        method: "POST",
        path: "tokens",
        handle: (r) => {
          const body = r.json();
          const scope = str(body, "scope", true, 255);
          const seconds = int(body, "expiresInSeconds", -86_400, 86_400, true);
          return { access_token: emulator().issueToken(scope, seconds), token_type: "Bearer", expires_in: seconds ?? null };
        },
      },
      {
        method: "PUT",
        path: "clock",
        handle: (r) => ({ offsetMs: emulator().setClockOffset(int(r.json(), "offsetMs", -31_536_000_000, 31_536_000_000)!) }),
      },
    ],
  });
}

export class UnknownDeviceError extends Error {
  override readonly name = "UnknownDeviceError";
}
