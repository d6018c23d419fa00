/** HTTPS calls that trust the emulator's CA (node:https, so nothing global is switched off or replaced). */
import { request } from "node:https";
import { createLocalJWKSet } from "jose";

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  json: any;
}

export function call(
  url: string,
  ca: string | undefined,
  o: { method?: string; form?: Record<string, string>; body?: string; headers?: Record<string, string> } = {},
): Promise<HttpAnswer> {
  const body = o.form ? new URLSearchParams(o.form).toString() : o.body;
  const headers: Record<string, string> = { ...(o.form ? { "content-type": "application/x-www-form-urlencoded" } : {}), ...o.headers };
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? (body === undefined ? "GET" : "POST"), headers, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The emulator's JWKS as a jose key set, fetched as a verifier would. */
export async function keySet(jwksUrl: string, ca: string | undefined) {
  const res = await call(jwksUrl, ca);
  if (res.status !== 200) throw new Error(`JWKS answered ${res.status}`);
  return createLocalJWKSet(res.json);
}
