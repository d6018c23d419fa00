/**
 * The receiver behaviour a test can switch while the emulator runs (`GET/POST /_emulator/settings`, `setSettings()`,
 * options and environment at start). Each switch is a server setting of the real receiver, or a place where the notes
 * leave two readings open and both are served.
 */
import { BadRequestError } from "@meridian/emulator-kit";
import { z } from "zod";
import type { Profile } from "./profile.js";

/**
 * What a data `create` does with a value whose index already holds one. PI's `OmfCreateMode` (Insert, Replace,
 * NoReplace, as PI Web API documents it) plus InsertNoCompression (an AF update option: stored like Insert, compression
 * is not modelled). SDS streams hold one event per index, so ADH and EDS take only `replace` or `noreplace`.
 */
export type CreateMode = "insert" | "replace" | "noreplace" | "insertnocompression";
export const CREATE_MODES = ["insert", "replace", "noreplace", "insertnocompression"] as const;
const SDS_CREATE_MODES = ["replace", "noreplace"] as const;

/** PI Web API releases the emulator can pose as: `/piwebapi/system` and the OMF versions accepted follow it. */
export const PI_RELEASES = {
  "2019": { title: "PI Web API 2019", version: "1.12.0.6346", omf: ["1.0"] },
  "2019 SP1": { title: "PI Web API 2019 SP1", version: "1.13.0.6518", omf: ["1.0", "1.1"] },
  "2021": { title: "PI Web API 2021", version: "1.15.0.96", omf: ["1.0", "1.1", "1.2"] },
  "2021 SP3": { title: "PI Web API 2021 SP3", version: "1.17.0.22", omf: ["1.0", "1.1", "1.2"] },
  "2023 SP1": { title: "PI Web API 2023 SP1", version: "1.19.1.1", omf: ["1.0", "1.1", "1.2"] },
} as const;
export type PiRelease = keyof typeof PI_RELEASES;

/** Edge Data Store releases: 2020 (1.0.x) speaks OMF 1.0/1.1 only, 2023 (1.1.x) also 1.2. */
export const EDS_RELEASES = {
  "2020": { version: "1.0.0.152", omf: ["1.0", "1.1"] },
  "2023": { version: "1.1.1.46", omf: ["1.0", "1.1", "1.2"] },
} as const;
export type EdsRelease = keyof typeof EDS_RELEASES;

export interface Settings {
  /** Per receiver: what a data `create` does at an index that holds a value. Defaults: PI `insert`, ADH/EDS `replace`. */
  createMode: Record<Profile, CreateMode>;
  /**
   * PI data `update` (OMF 1.2): `createmode` (default) follows OmfCreateMode as AVEVA documents it; `replace` always
   * overwrites, as fledge reports it behaving. The notes leave it open, so both readings are served.
   */
  piUpdate: "createmode" | "replace";
  /**
   * PI point names: `simple` (default) names the point of a one-value type after the container and the others
   * `{container}.{property}` (the notes and the seed's expected points); `property` names every point
   * `{container}.{property}` (the docs' `{property.index}` wording read literally).
   */
  piPointNames: "simple" | "property";
  piRelease: PiRelease;
  edsRelease: EdsRelease;
  /**
   * `false` (default): keywords newer than the request's `omfversion` are accepted, as the OMF spec says receivers
   * generally ignore what they do not support. `true`: they are refused with 400.
   */
  strict: boolean;
  /** SDS answer to a type or container re-created with another definition: 400 (the notes, from fledge) or 409. */
  sdsConflictStatus: 400 | 409;
  /**
   * How SDS read-back prints a date-time: `trimmed` (default; 100 ns kept, trailing zeros dropped, .NET's round-trip
   * form), `fixed7` (always 7 fractional digits) or `asSent` (the string the sender wrote).
   */
  sdsTimestamps: "trimmed" | "fixed7" | "asSent";
}

export const DEFAULT_SETTINGS: Settings = {
  createMode: { pi: "insert", adh: "replace", eds: "replace" },
  piUpdate: "createmode",
  piPointNames: "simple",
  piRelease: "2023 SP1",
  edsRelease: "2023",
  strict: false,
  sdsConflictStatus: 400,
  sdsTimestamps: "trimmed",
};

/** A partial settings document as the admin route, options and environment give it; values are case-insensitive. */
export type SettingsPatch = Partial<Omit<Settings, "createMode">> & { createMode?: Partial<Record<Profile, CreateMode>> };

const lower = (v: unknown) => (typeof v === "string" ? v.toLowerCase() : v);
const upperSp = (v: unknown) => (typeof v === "string" ? v.toUpperCase().replace(/\s+/g, " ").trim() : v);

const Patch = z
  .object({
    createMode: z
      .object({
        pi: z.preprocess(lower, z.enum(CREATE_MODES)).optional(),
        adh: z.preprocess(lower, z.enum(SDS_CREATE_MODES)).optional(),
        eds: z.preprocess(lower, z.enum(SDS_CREATE_MODES)).optional(),
      })
      .strict()
      .optional(),
    piUpdate: z.preprocess(lower, z.enum(["createmode", "replace"])).optional(),
    piPointNames: z.preprocess(lower, z.enum(["simple", "property"])).optional(),
    piRelease: z.preprocess(upperSp, z.enum(Object.keys(PI_RELEASES) as [PiRelease, ...PiRelease[]])).optional(),
    edsRelease: z.preprocess((v) => (typeof v === "number" ? String(v) : v), z.enum(["2020", "2023"])).optional(),
    strict: z.boolean().optional(),
    sdsConflictStatus: z.union([z.literal(400), z.literal(409)]).optional(),
    sdsTimestamps: z.enum(["trimmed", "fixed7", "asSent"]).optional(),
  })
  .strict();

/** Validates an untrusted settings patch; throws the kit's BadRequestError naming the first wrong field. */
export function parseSettingsPatch(input: unknown): SettingsPatch {
  const r = Patch.safeParse(input);
  if (r.success) return r.data as SettingsPatch;
  const issue = r.error.issues[0]!;
  const field = issue.path.length ? issue.path.join(".") : ((issue as { keys?: string[] }).keys?.join(",") ?? "body");
  throw new BadRequestError(field, issue.message);
}

export function applySettings(s: Settings, patch: SettingsPatch): Settings {
  const { createMode, ...rest } = patch;
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) (s as unknown as Record<string, unknown>)[k] = v;
  if (createMode) for (const [p, m] of Object.entries(createMode)) if (m) s.createMode[p as Profile] = m;
  return s;
}

export function newSettings(patch: SettingsPatch = {}): Settings {
  return applySettings({ ...DEFAULT_SETTINGS, createMode: { ...DEFAULT_SETTINGS.createMode } }, patch);
}

/** OMF versions a receiver accepts in the `omfversion` header, by its release. ADH takes all three. */
export function omfVersionsOf(s: Settings, profile: Profile): readonly string[] {
  if (profile === "pi") return PI_RELEASES[s.piRelease].omf;
  if (profile === "eds") return EDS_RELEASES[s.edsRelease].omf;
  return ["1.0", "1.1", "1.2"];
}
