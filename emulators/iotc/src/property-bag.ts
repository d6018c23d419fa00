/**
 * The property bag at the end of a telemetry or C2D topic (protocol notes 2.3, 7): `k=v&k2=v2`, keys and values
 * percent-encoded (the Node SDK writes `%24.ct=application%2Fjson`), keys without `=`, with or without a trailing `/`.
 */

/** Longest bag accepted; IoT Hub counts the bag toward the message size. */
export const MAX_PROPERTY_BAG_LENGTH = 16 * 1024;

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, "%20"));
  } catch {
    return s;
  }
}

export function parsePropertyBag(bag: string): Record<string, string> {
  const out: Record<string, string> = {};
  const trimmed = bag.endsWith("/") ? bag.slice(0, -1) : bag;
  if (!trimmed) return out;
  for (const part of trimmed.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    out[key] = eq < 0 ? "" : decode(part.slice(eq + 1));
  }
  return out;
}

/** System properties first, as the hub writes them; every key and value percent-encoded. */
export function formatPropertyBag(props: Record<string, string>): string {
  return Object.entries(props)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
}
