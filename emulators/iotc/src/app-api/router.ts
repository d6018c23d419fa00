/**
 * IoT Central's application REST API (data plane, `/api/...?api-version=2022-07-31`) on the emulator's HTTPS
 * listener: devices, commands, properties and last telemetry values, over the same model the device side drives.
 * Every call carries the emulator's API token (`Authorization: SharedAccessSignature sr=...`), compared whole in
 * constant time: none is 401, another is 403.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { readBody, safeEqual, sendJson } from "@meridian/emulator-kit";
import type { Logger } from "@meridian/service-kit";
import { InvalidRequestError, type IotcModel } from "../model.js";
import { TwinPatchError } from "../twin.js";
import { Commands, commandRequestOf } from "./commands.js";
import { Devices } from "./devices.js";
import { AppApiError, badRequest, errorBody } from "./errors.js";
import { deviceIdOf, dtdlNameOf } from "./names.js";
import {
  acceptedProperties,
  componentNames,
  type DesiredWrite,
  desiredPatchOf,
  renderComponentProperties,
  renderProperties,
  writtenPaths,
} from "./properties.js";
import { lastTelemetryValue } from "./telemetry.js";

export const API_VERSIONS = ["2022-07-31", "2022-05-31", "2022-10-31-preview"] as const;
const PREFIX = "/api/";
/** Largest request body: a command request carries up to 128 KiB of payload, a property write up to 32 KiB. */
export const MAX_BODY_BYTES = 256 * 1024;

export interface AppApiOptions {
  apiToken: string;
}

export interface AppApi {
  matches(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
}

interface Call {
  req: IncomingMessage;
  url: URL;
  method: string;
  /** Path segments after /api/, still percent-encoded. */
  parts: string[];
  body: () => unknown;
}

type Answer = { status: number; body?: unknown };

export function createAppApi(model: IotcModel, options: AppApiOptions, log: Logger): AppApi {
  const devices = new Devices(model);
  const commands = new Commands(model);
  // When each desired property was last written (for $metadata), whoever wrote it: this API, /_emulator, or a test.
  const writes = new Map<string, Map<string, DesiredWrite>>();
  const writeKey = (name: string, component?: string) => `${component ?? ""}\n${name}`;
  model.on("desired", (deviceId, patch, version) => {
    // Version 2 is a desired section's first write: whatever was recorded belonged to a device since reset.
    let device = writes.get(deviceId);
    if (!device || version === 2) {
      device = new Map();
      writes.set(deviceId, device);
    }
    const at = new Date();
    for (const p of writtenPaths(patch)) {
      if (p.deleted) device.delete(writeKey(p.name, p.component));
      else device.set(writeKey(p.name, p.component), { version, at });
    }
  });

  function authorize(req: IncomingMessage): void {
    const header = req.headers.authorization;
    if (header === undefined || header.trim() === "") {
      throw new AppApiError(401, "Unauthorized", "the request has no Authorization header (an API token: SharedAccessSignature sr=...)");
    }
    if (!safeEqual(header.trim(), options.apiToken)) {
      const kind = /^bearer\s/i.test(header) ? " (bearer tokens are not emulated: use the emulator's API token)" : "";
      throw new AppApiError(403, "Forbidden", `the Authorization header is not a valid API token for this application${kind}`);
    }
  }

  function apiVersion(url: URL): void {
    const v = url.searchParams.get("api-version");
    if (v === null) throw badRequest("api-version", `the query parameter is required (${API_VERSIONS.join(", ")})`);
    if (!(API_VERSIONS as readonly string[]).includes(v)) {
      throw badRequest("api-version", `${JSON.stringify(v.slice(0, 40))} is not supported (${API_VERSIONS.join(", ")})`);
    }
  }

  const queueIfOffline = (url: URL): boolean => {
    const v = url.searchParams.get("queueIfOffline");
    if (v === null || v === "false") return false;
    if (v === "true") return true;
    throw badRequest("queueIfOffline", "must be true or false");
  };

  function twinOf(deviceId: string) {
    devices.require(deviceId);
    return model.twin(deviceId);
  }

  function writeProperties(deviceId: string, body: unknown, component?: string): Answer {
    const twin = twinOf(deviceId);
    const patch = desiredPatchOf(body, componentNames(twin), component);
    // The model pushes the patch to the device's connection, if it holds one subscribed to desired updates.
    const version = model.patchDesired(deviceId, patch);
    return { status: 202, body: acceptedProperties(patch, version, component) };
  }

  async function runCommand(call: Call, deviceId: string, command: string, component?: string): Promise<Answer> {
    const methodName = component === undefined ? command : `${component}*${command}`;
    if (call.method === "GET") {
      devices.require(deviceId);
      return { status: 200, body: { value: commands.latest(deviceId, methodName) } };
    }
    const req = commandRequestOf(call.body());
    devices.require(deviceId);
    return commands.run(deviceId, methodName, req, queueIfOffline(call.url));
  }

  function allow(call: Call, methods: string[]): void {
    if (!methods.includes(call.method)) {
      throw new AppApiError(405, "MethodNotAllowed", `${call.method} is not allowed on ${call.url.pathname}`, {
        allow: methods.join(", "),
      });
    }
  }

  async function route(call: Call): Promise<Answer> {
    const p = call.parts;
    if (p[0] !== "devices") throw new AppApiError(404, "NotFound", `no API route ${call.url.pathname} in the emulator`);
    if (p.length === 1) {
      allow(call, ["GET"]);
      return { status: 200, body: devices.list(call.url.searchParams, selfUrl(call)) };
    }
    const deviceId = deviceIdOf(p[1]!);
    const rest = p.slice(2);
    let component: string | undefined;
    if (rest[0] === "components" && rest.length >= 3) {
      component = dtdlNameOf(rest[1]!, "componentName");
      rest.splice(0, 2);
    }
    if (rest.length === 0 && component === undefined) {
      allow(call, ["GET", "PATCH"]);
      if (call.method === "GET") return { status: 200, body: devices.view(devices.require(deviceId)) };
      return { status: 200, body: devices.update(deviceId, call.body(), headerOf(call.req, "if-match")) };
    }
    if (rest.length === 2 && rest[0] === "commands") {
      allow(call, ["GET", "POST"]);
      return runCommand(call, deviceId, dtdlNameOf(rest[1]!, "commandName"), component);
    }
    if (rest.length === 1 && rest[0] === "properties") {
      allow(call, ["GET", "PUT", "PATCH"]);
      if (call.method !== "GET") return writeProperties(deviceId, call.body(), component);
      const twin = twinOf(deviceId);
      const get = (name: string, c?: string) => writes.get(deviceId)?.get(writeKey(name, c));
      return {
        status: 200,
        body: component === undefined ? renderProperties(twin, get) : renderComponentProperties(twin, component, get),
      };
    }
    if (rest.length === 2 && rest[0] === "telemetry") {
      allow(call, ["GET"]);
      const name = dtdlNameOf(rest[1]!, "telemetryName");
      devices.require(deviceId);
      const value = lastTelemetryValue(model.telemetry(deviceId), name, component);
      if (!value) {
        const where = component === undefined ? "" : ` of component ${component}`;
        throw new AppApiError(404, "NotFound", `device ${deviceId} has sent no value of telemetry ${name}${where}`);
      }
      return { status: 200, body: value };
    }
    throw new AppApiError(404, "NotFound", `no API route ${call.url.pathname} in the emulator`);
  }

  return {
    matches: (pathname) => pathname.startsWith(PREFIX) || pathname === "/api",
    async handle(req, res, url) {
      const requestId = randomUUID();
      const method = req.method ?? "GET";
      try {
        const body = await readBody(req, MAX_BODY_BYTES);
        authorize(req);
        apiVersion(url);
        if (body.tooLarge) throw new AppApiError(413, "PayloadTooLarge", `the request body is over ${MAX_BODY_BYTES} bytes`);
        const call: Call = {
          req,
          url,
          method,
          parts: url.pathname.slice(PREFIX.length).split("/").filter(Boolean),
          body: () => parseJson(body.buf, headerOf(req, "content-type")),
        };
        const answer = await route(call);
        sendJson(res, answer.status, answer.body, { "x-ms-request-id": requestId });
      } catch (err) {
        const known = asAppApiError(err);
        const e = known ?? new AppApiError(500, "InternalServerError", "internal error in the emulator");
        const where = { requestId, method, path: url.pathname };
        // An error no one mapped is the emulator's bug: logged with its stack, and still answered in IoT Central's shape.
        if (known) log.info({ ...where, status: e.status, code: e.code, reason: e.message }, "application API refused");
        else log.error({ ...where, err }, "application API request failed");
        sendJson(res, e.status, errorBody(e, requestId), { "x-ms-error-code": e.code, "x-ms-request-id": requestId, ...e.headers });
      }
    },
  };
}

/** Errors of the model that are the caller's: a bad method name or payload, a twin patch the hub refuses. */
function asAppApiError(err: unknown): AppApiError | undefined {
  if (err instanceof AppApiError) return err;
  if (err instanceof InvalidRequestError || err instanceof TwinPatchError) return badRequest("body", err.message);
  return undefined;
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The request's own URL (for nextLink), with the host the client used. */
function selfUrl(call: Call): URL {
  const host = headerOf(call.req, "host") ?? "localhost";
  return new URL(`${call.url.pathname}${call.url.search}`, `https://${host}`);
}

function parseJson(buf: Buffer, contentType: string | undefined): unknown {
  if (contentType !== undefined && !/^application\/(merge-patch\+)?json\b/i.test(contentType.trim())) {
    throw new AppApiError(415, "UnsupportedMediaType", `content-type ${JSON.stringify(contentType)} is not application/json`);
  }
  const text = buf.toString("utf8");
  if (text.trim() === "") throw badRequest("body", "is empty: a JSON object is required");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest("body", `is not valid JSON (${(err as Error).message})`);
  }
}
