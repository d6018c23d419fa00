/**
 * Query strings as the OCI TypeScript SDK sends them (§5.4): it does not URL-encode values, so `+` is a literal plus
 * (never a space) and a `%` that starts no escape is kept as it is.
 */
export function parseQuery(target: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = target.indexOf("?");
  if (q < 0) return out;
  for (const part of target.slice(q + 1).split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    // The first occurrence wins, as the SDK never repeats a key.
    if (!out.has(key)) out.set(key, decode(eq < 0 ? "" : part.slice(eq + 1)));
  }
  return out;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
