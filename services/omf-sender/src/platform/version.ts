import type { OmfVersion } from "./messages.js";

/**
 * Which OMF version an endpoint speaks, from what it says about itself. Only consulted when the endpoint's
 * `omfVersion` is not set (client.ts `omfVersion()`); AVEVA Data Hub speaks 1.2 and is not asked.
 *
 * PI Web API (`GET /piwebapi/system`): the release year in `ProductTitle` ("PI Web API 2019 SP1") as fledge maps it,
 * 2019 → 1.0, 2020 → 1.1, 2021 and later → 1.2. Without a year, `ProductVersion` (1.13 = 2019 SP1, 1.15 = 2021):
 * 1.15+ → 1.2, 1.13–1.14 → 1.1, older → 1.0. OMF services first shipped in PI Web API 2019, so nothing older exists.
 *
 * Edge Data Store (`GET /api/v1/diagnostics/productinformation`, `"Product Version"`): EDS 2020 is 1.0.x and speaks
 * OMF 1.0 / 1.1; 1.1.x (EDS 2023) and later speak 1.2.
 *
 * undefined when the reply says neither: the caller keeps DEFAULT_OMF_VERSION and asks again later.
 */
export function omfVersionOfPiSystem(body: unknown): OmfVersion | undefined {
  if (body === null || typeof body !== "object") return undefined;
  const b = body as Record<string, unknown>;
  const title = field(b, "ProductTitle");
  const year = title === undefined ? undefined : /\b(20\d\d)\b/.exec(title)?.[1];
  if (year !== undefined) {
    const y = Number(year);
    return y <= 2019 ? "1.0" : y === 2020 ? "1.1" : "1.2";
  }
  const version = parseVersion(field(b, "ProductVersion"));
  if (version === undefined) return undefined;
  const [major, minor] = version;
  if (major > 1 || minor >= 15) return "1.2";
  return minor >= 13 ? "1.1" : "1.0";
}

export function omfVersionOfEdsProduct(body: unknown): OmfVersion | undefined {
  if (body === null || typeof body !== "object") return undefined;
  const version = parseVersion(field(body as Record<string, unknown>, "Product Version", "ProductVersion"));
  if (version === undefined) return undefined;
  const [major, minor] = version;
  return major === 1 && minor === 0 ? "1.1" : "1.2";
}

/** A string field, its name matched case-insensitively (the two products spell keys differently). */
function field(body: Record<string, unknown>, ...names: string[]): string | undefined {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  for (const [k, v] of Object.entries(body)) if (wanted.has(k.toLowerCase()) && typeof v === "string") return v;
  return undefined;
}

function parseVersion(text: string | undefined): [number, number] | undefined {
  const m = text === undefined ? null : /^\s*(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}
