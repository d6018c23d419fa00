/** A caller of the emulator's application REST API over HTTPS, trusting the emulator's CA and verifying its name. */
import { request } from "node:https";
import type { IotcEmulator } from "../src/index.js";

export interface ApiAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body parsed as JSON; undefined when empty. Tests read it field by field and expect() checks each. */
  // biome-ignore lint/suspicious/noExplicitAny: an answer's shape is what the test asserts, not what it assumes
  json: any;
}

export interface ApiCallOptions {
  /** A JSON value to send, or `raw` bytes as they are. */
  body?: unknown;
  raw?: string | Buffer;
  /** The Authorization header; default the emulator's API token, null for none. */
  authorization?: string | null;
  /** Default 2022-07-31, null to leave it out. */
  apiVersion?: string | null;
  headers?: Record<string, string>;
}

/** `path` is under the listener's root (e.g. `/api/devices?maxpagesize=2`), or a whole URL (a nextLink). */
export function api(e: IotcEmulator, method: string, path: string, options: ApiCallOptions = {}): Promise<ApiAnswer> {
  const url = new URL(path, e.httpsUrl);
  const version = options.apiVersion === undefined ? "2022-07-31" : options.apiVersion;
  if (version !== null && !url.searchParams.has("api-version")) url.searchParams.set("api-version", version);
  const auth = options.authorization === undefined ? e.apiToken : options.authorization;
  const payload = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const headers: Record<string, string> = {
    ...(auth === null ? {} : { authorization: auth }),
    ...(payload === undefined ? {} : { "content-type": "application/json" }),
    ...options.headers,
  };
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ca: e.caPem }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        try {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text === "" ? undefined : JSON.parse(text) });
        } catch (err) {
          reject(new Error(`answer ${res.statusCode} is not JSON: ${text.slice(0, 200)}`, { cause: err }));
        }
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(payload);
  });
}
