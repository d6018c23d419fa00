import { readFileSync, statSync } from "node:fs";
import { z } from "zod";
import { ConfigError } from "../config.js";
import type { Logger } from "../logger.js";
import { ALL_ROLES, isRole } from "./roles.js";

const role = z.string().refine((r) => r === ALL_ROLES || isRole(r), { message: "unknown role" });
const name = z.string().regex(/^[A-Za-z0-9._@:/-]{1,128}$/, "1 to 128 letters, digits or . _ @ : / -");

const apiKeyEntry = z.strictObject({
  /** The 12 hex digits after `mrd_` in the key. */
  id: z.string().regex(/^[0-9a-f]{12}$/, "12 lower-case hex digits"),
  /** Who holds the key: logged as the caller. */
  name,
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "64 lower-case hex digits (SHA-256 of the whole key)"),
  roles: z.array(role).min(1).max(32),
  /** After this instant the key is refused. */
  expiresAt: z.iso.datetime({ offset: true }).optional(),
});

const certificateEntry = z.strictObject({
  name,
  /** Matched against the verified client certificate's subject CN and its DNS subject alternative names. */
  commonName: z.string().min(1).max(253),
  roles: z.array(role).min(1).max(32),
});

export const identitiesFileSchema = z.strictObject({
  apiKeys: z.array(apiKeyEntry).max(10_000).default([]),
  clientCertificates: z.array(certificateEntry).max(10_000).default([]),
});

export type IdentitiesFile = z.infer<typeof identitiesFileSchema>;

export interface KnownApiKey {
  name: string;
  sha256: string;
  roles: ReadonlySet<string>;
  expiresAt?: number;
}

export interface KnownCertificate {
  name: string;
  roles: ReadonlySet<string>;
}

/** The identities file as lookups: API keys by id, certificate identities by name. */
export interface Identities {
  apiKeys: ReadonlyMap<string, KnownApiKey>;
  certificates: ReadonlyMap<string, KnownCertificate>;
}

export function parseIdentities(text: string, source: string): Identities {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`AUTH_IDENTITIES_FILE: ${source} is not JSON: ${(err as Error).message}`, ["AUTH_IDENTITIES_FILE"]);
  }
  const parsed = identitiesFileSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new ConfigError(`AUTH_IDENTITIES_FILE: ${source}:\n  ${problems.join("\n  ")}`, ["AUTH_IDENTITIES_FILE"]);
  }
  const apiKeys = new Map<string, KnownApiKey>();
  for (const k of parsed.data.apiKeys) {
    if (apiKeys.has(k.id))
      throw new ConfigError(`AUTH_IDENTITIES_FILE: ${source}: API key id ${k.id} appears twice`, ["AUTH_IDENTITIES_FILE"]);
    apiKeys.set(k.id, {
      name: k.name,
      sha256: k.sha256,
      roles: new Set(k.roles),
      ...(k.expiresAt ? { expiresAt: Date.parse(k.expiresAt) } : {}),
    });
  }
  const certificates = new Map<string, KnownCertificate>();
  for (const c of parsed.data.clientCertificates) certificates.set(c.commonName.toLowerCase(), { name: c.name, roles: new Set(c.roles) });
  return { apiKeys, certificates };
}

/**
 * The identities file, re-read when it changes (a Kubernetes Secret update, a key added or revoked) without a restart.
 * A change that does not parse keeps the previous identities and is logged at error: revoking by editing must not
 * lock everyone out because of a typo, and the error says what to fix.
 */
export class IdentitiesFileWatcher {
  #current: Identities;
  #stamp: string;
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
    pollMs = 5_000,
  ) {
    this.#current = this.#read();
    this.#stamp = this.#readStamp();
    this.#timer = setInterval(() => this.refresh(), pollMs);
    this.#timer.unref();
  }

  get current(): Identities {
    return this.#current;
  }

  /** Re-reads the file if it changed; called by the poll, and by tests. */
  refresh(): void {
    let stamp: string;
    try {
      stamp = this.#readStamp();
    } catch (err) {
      this.logger.error({ err, file: this.path }, "identities file unreadable: keeping the identities loaded before");
      return;
    }
    if (stamp === this.#stamp) return;
    try {
      this.#current = this.#read();
      this.#stamp = stamp;
      this.logger.info(
        { file: this.path, apiKeys: this.#current.apiKeys.size, certificates: this.#current.certificates.size },
        "identities file reloaded",
      );
    } catch (err) {
      this.#stamp = stamp;
      this.logger.error(
        { err: (err as Error).message, file: this.path },
        "identities file changed but is invalid: keeping the identities loaded before",
      );
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #readStamp(): string {
    const s = statSync(this.path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  }

  #read(): Identities {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      throw new ConfigError(`AUTH_IDENTITIES_FILE: cannot read ${this.path}: ${(err as Error).message}`, ["AUTH_IDENTITIES_FILE"]);
    }
    return parseIdentities(text, this.path);
  }
}
