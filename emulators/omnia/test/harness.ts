/**
 * Test support: a stand-in identity provider (OpenID metadata + JWKS over loopback http, tokens signed with jose),
 * the emulator started against it, and a raw HTTPS client that trusts the emulator's CA.
 */
import { createServer } from "node:http";
import { request } from "node:https";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { DEFAULT_RESOURCE_ID, type OmniaEmulatorOptions, type RunningOmniaEmulator, startOmniaEmulator } from "../src/index.js";

export const RESOURCE = DEFAULT_RESOURCE_ID;

export interface TestIdp {
  authority: string;
  issuer: string;
  /** A token for the API, signed with the provider's key; `claims` override the defaults. */
  token(claims?: JWTPayload, opts?: { expiresIn?: string | number; key?: "known" | "unknown" }): Promise<string>;
  stop(): Promise<void>;
}

export async function startTestIdp(): Promise<TestIdp> {
  const known = await generateKeyPair("RS256");
  const unknown = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(known.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  let base = "";
  const server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url?.endsWith("/.well-known/openid-configuration"))
      res.end(JSON.stringify({ issuer: `${base}/tenant/v2.0`, jwks_uri: `${base}/keys` }));
    else if (req.url === "/keys") res.end(JSON.stringify({ keys: [jwk] }));
    else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const issuer = `${base}/tenant/v2.0`;
  return {
    authority: `${base}/tenant/v2.0`,
    issuer,
    token: (claims = {}, o = {}) =>
      new SignJWT({ roles: ["Timeseries.Read"], oid: "11111111-2222-3333-4444-555555555555", ...claims })
        .setProtectedHeader({ alg: "RS256", kid: o.key === "unknown" ? "k2" : "k1" })
        .setIssuer(typeof claims.iss === "string" ? claims.iss : issuer)
        .setAudience((claims.aud as string | undefined) ?? RESOURCE)
        .setIssuedAt()
        .setExpirationTime(o.expiresIn ?? "1h")
        .sign(o.key === "unknown" ? unknown.privateKey : known.privateKey),
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export interface Env {
  emu: RunningOmniaEmulator;
  idp: TestIdp;
  token: string;
  api: Api;
  stop(): Promise<void>;
}

export async function startEnv(options: OmniaEmulatorOptions = {}): Promise<Env> {
  const idp = await startTestIdp();
  const emu = await startOmniaEmulator({ ...options, auth: { authority: idp.authority, ...options.auth } });
  const token = await idp.token();
  return {
    emu,
    idp,
    token,
    api: new Api(emu, token),
    stop: async () => {
      await emu.stop();
      await idp.stop();
    },
  };
}

export interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bytes: Buffer;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  json: any;
}

export interface CallOptions {
  query?: Record<string, string | number | boolean | (string | number)[] | undefined>;
  body?: unknown;
  rawBody?: string;
  accept?: string;
  /** null sends no Authorization header. */
  token?: string | null;
  headers?: Record<string, string>;
}

/** Raw HTTPS against the emulator: the CA trusted, headers as the python client sends them. */
export class Api {
  constructor(
    readonly emu: RunningOmniaEmulator,
    readonly token: string,
    readonly version = "v1.7",
  ) {}

  url(path: string, query: CallOptions["query"] = {}): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined) continue;
      for (const x of Array.isArray(v) ? v : [v]) qs.append(k, String(x));
    }
    const q = qs.toString();
    return `${this.emu.url}/plant/timeseries/${this.version}${path}${q ? `?${q}` : ""}`;
  }

  call(method: string, path: string, o: CallOptions = {}): Promise<Res> {
    return raw(
      this.emu,
      method,
      this.url(path, o.query),
      {
        "content-type": "application/json",
        accept: o.accept ?? "application/json",
        ...(o.token === null ? {} : { authorization: `Bearer ${o.token ?? this.token}` }),
        ...o.headers,
      },
      o.rawBody ?? (o.body === undefined ? undefined : JSON.stringify(o.body)),
    );
  }

  get = (path: string, o: CallOptions = {}) => this.call("GET", path, o);
  post = (path: string, body: unknown, o: CallOptions = {}) => this.call("POST", path, { ...o, body });
}

export function raw(emu: { caPem?: string }, method: string, url: string, headers: Record<string, string>, body?: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ca: emu.caPem, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const bytes = Buffer.concat(chunks);
        const text = bytes.toString("utf8");
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, text, json });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Admin call (no auth). */
export function admin(emu: RunningOmniaEmulator, method: string, path: string, body?: unknown): Promise<Res> {
  return raw(
    emu,
    method,
    `${emu.url}/_emulator/${path}`,
    { "content-type": "application/json" },
    body === undefined ? undefined : JSON.stringify(body),
  );
}

export type DecodedValue = { int64: bigint } | { double: number } | { uint32: number } | { uint64: bigint } | Record<string, never>;
export interface DecodedItem {
  id: string;
  totalCount: bigint;
  fields: string[];
  values: DecodedValue[];
}

/** CompactDatapointsDto decoded by hand from the notes' schema (test side; shares nothing with the encoder). */
export function decodeCompact(bytes: Uint8Array): { data: DecodedItem[]; continuationToken: string } {
  const r = new BinaryReader(bytes);
  const out = { data: [] as DecodedItem[], continuationToken: "" };
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 1) {
      const ir = new BinaryReader(r.bytes());
      const item: DecodedItem = { id: "", totalCount: 0n, fields: [], values: [] };
      while (ir.pos < ir.len) {
        const [f, w] = ir.tag();
        if (f === 1) item.id = ir.string();
        else if (f === 2) item.totalCount = BigInt(ir.uint64());
        else if (f === 3) item.fields.push(ir.string());
        else if (f === 4) {
          const vr = new BinaryReader(ir.bytes());
          let v: DecodedValue = {};
          while (vr.pos < vr.len) {
            const [vf] = vr.tag();
            if (vf === 1) v = { int64: BigInt(vr.int64()) };
            else if (vf === 2) v = { double: vr.double() };
            else if (vf === 3) v = { uint32: vr.uint32() };
            else if (vf === 4) v = { uint64: BigInt(vr.uint64()) };
          }
          item.values.push(v);
        } else ir.skip(w);
      }
      out.data.push(item);
    } else if (no === 2) out.continuationToken = r.string();
    else r.skip(wt);
  }
  return out;
}
