import { timingSafeEqual } from "node:crypto";

/** Compares secrets in time independent of where they differ. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `Authorization: Basic <base64 user:password>` split at the first colon; undefined for anything else. */
export function basicCredentials(authorization: string | undefined): { username: string; password: string } | undefined {
  const m = authorization ? /^Basic\s+(\S+)$/i.exec(authorization.trim()) : null;
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const i = decoded.indexOf(":");
  if (i < 0) return undefined;
  return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
}
