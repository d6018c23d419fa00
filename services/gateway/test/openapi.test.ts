import { Code, ConnectError } from "@connectrpc/connect";
import { OciTwinManagerService, TwinKind } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { TelemetryService } from "@meridian/contracts/meridian/telemetry/v1/telemetry_service_pb";
import { readOpenApiDocument } from "@meridian/contracts/openapi";
import { authSettings, type RunningService, serverAuth, startService } from "@meridian/service-kit";
import { type NatsServerHandle, startNatsServer, TEST_KEYS, testIdentitiesFile, testLogger } from "@meridian/testing";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { gatewayConfig } from "../src/config.js";
import { type Gateway, startGateway } from "../src/service.js";

const logger = testLogger();

type Json = Record<string, unknown>;
type OpenApi = {
  servers: Array<{ url: string }>;
  paths: Record<string, Record<string, Json>>;
  components: { schemas: Record<string, Json> };
};

/** The schema a $ref names, followed until it is not a reference. */
function resolve(doc: OpenApi, schema: Json): Json {
  let s = schema;
  while (typeof s.$ref === "string") s = doc.components.schemas[s.$ref.replace("#/components/schemas/", "")]!;
  return s;
}

/**
 * A request body made from nothing but the document: every required property filled (a string from `values` by its
 * name, else "x"; an enum's first value that is not *_UNSPECIFIED; one item in a required array).
 */
function exampleOf(doc: OpenApi, schema: Json, values: Record<string, unknown>, name = ""): unknown {
  const s = resolve(doc, schema);
  if (Array.isArray(s.enum)) return (s.enum as string[]).find((v) => !v.endsWith("_UNSPECIFIED")) ?? s.enum[0];
  if (name in values) return values[name];
  switch (s.type) {
    case "object": {
      const props = (s.properties ?? {}) as Record<string, Json>;
      return Object.fromEntries(((s.required ?? []) as string[]).map((p) => [p, exampleOf(doc, props[p]!, values, p)]));
    }
    case "array":
      return [exampleOf(doc, s.items as Json, values, name)];
    case "string":
      return s.format === "date-time" ? new Date().toISOString() : "x";
    case "integer":
      return 1;
    case "boolean":
      return true;
    default:
      return {};
  }
}

/** Whether a JSON answer has only what the schema says, of the types it says (enough to catch a wrong document). */
function conforms(doc: OpenApi, value: unknown, schema: Json, at = "$"): string[] {
  const s = resolve(doc, schema);
  if (Array.isArray(s.enum) && !s.enum.includes(value)) return [`${at}: ${String(value)} is not one of the enum's values`];
  const types = ([] as unknown[]).concat(s.type ?? []);
  if (types.length === 0) return [];
  const actual = value === null ? "null" : Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value;
  const ok = types.some((t) => t === actual || (t === "number" && actual === "integer"));
  if (!ok) return [`${at}: ${actual} where the schema says ${types.join("|")}`];
  if (actual === "array") return (value as unknown[]).flatMap((v, i) => conforms(doc, v, s.items as Json, `${at}[${i}]`));
  if (actual === "object" && s.properties) {
    const props = s.properties as Record<string, Json>;
    return Object.entries(value as Json).flatMap(([k, v]) =>
      props[k] ? conforms(doc, v, props[k]!, `${at}.${k}`) : [`${at}.${k}: not in the schema`],
    );
  }
  return [];
}

describe("the API document and its page, served by an in-process gateway", () => {
  let nats: NatsServerHandle;
  let backend: RunningService;
  let gw: Gateway;
  let url: string;
  let doc: OpenApi;

  beforeAll(async () => {
    nats = await startNatsServer();
    // A stand-in for oci-twin-manager, to reach a proxied method (one newly marked NO_SIDE_EFFECTS) through the gateway.
    backend = await startService({
      name: "oci-twin-manager",
      port: 0,
      logger,
      auth: serverAuth(z.object(authSettings).parse({ AUTH_IDENTITIES_FILE: testIdentitiesFile() }), logger),
      installSignalHandlers: false,
      routes: (router) =>
        router.service(OciTwinManagerService, {
          async getTwin(req) {
            if (req.twin?.ref.case !== "key" || req.twin.ref.value !== "pump-1") throw new ConnectError("no such twin", Code.NotFound);
            return { twin: { key: "pump-1", kind: TwinKind.CUSTOM_ADAPTER, iotDomainId: "ocid1.iotdomain.x" } };
          },
        }),
    });
    gw = await startGateway(gatewayConfig.parse({ PORT: "0", AUTH_IDENTITIES_FILE: testIdentitiesFile(), NATS_URL: nats.url }), logger, {
      installSignalHandlers: false,
      backends: [{ services: [OciTwinManagerService], url: backend.url }],
    });
    await gw.bus.ready;
    url = gw.service.url;
    const res = await fetch(`${url}/openapi.json`);
    expect(res.status).toBe(200);
    doc = (await res.json()) as OpenApi;
  });
  afterAll(async () => {
    await gw?.stop();
    await backend?.stop();
    await nats?.stop();
  });

  it("serves /openapi.json without credentials: the generated document, valid OpenAPI 3.1, servers relative", async () => {
    const res = await fetch(`${url}/openapi.json`);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const text = await res.text();
    expect(text).toBe(readOpenApiDocument());
    const validator = new Validator();
    const result = await validator.validate(JSON.parse(text));
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    expect(doc.servers).toEqual([{ url: "/" }]);
    // The validator refuses a broken document, so the pass above means something.
    const broken = JSON.parse(text);
    broken.paths["/meridian.route.v1.RouteService/GetRoute"].post.responses = "none";
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it("has an operation for every method the gateway serves, with its role, and GET exactly for NO_SIDE_EFFECTS ones", () => {
    for (const service of [TelemetryService, RouteService, StatusService, OciTwinManagerService]) {
      for (const method of service.methods) {
        const item = doc.paths[`/${service.typeName}/${method.name}`];
        expect(item, `${service.typeName}/${method.name}`).toBeDefined();
        expect(item!.post!.operationId).toBe(`${service.name}_${method.name}`);
        expect(item!.post!["x-meridian-role"]).toMatch(/^[a-z]+:(read|admin|publish)$/);
        expect(item!.post!.description).toContain(`\`${item!.post!["x-meridian-role"]}\``);
        expect(item!.get !== undefined, `GET of ${method.name}`).toBe(method.idempotency === 1 && method.methodKind === "unary");
      }
    }
    expect(doc.paths["/meridian.route.v1.RouteService/ListRoutes"]!.post!["x-meridian-role"]).toBe("routes:read");
    const subscribe = doc.paths["/meridian.telemetry.v1.TelemetryService/Subscribe"]!.post!;
    expect(subscribe["x-meridian-streaming"]).toBe("server_streaming");
    expect(Object.keys((subscribe.requestBody as { content: Json }).content)).toEqual(["application/connect+json"]);
  });

  it("an HTTP call built from the document succeeds: CreateRoute by POST, then GetRoute by Connect GET, answers as documented", async () => {
    const [path, item] = Object.entries(doc.paths).find(([, i]) => i.post?.operationId === "RouteService_CreateRoute")!;
    const bodySchema = (item.post!.requestBody as { content: Record<string, { schema: Json }> }).content["application/json"]!.schema;
    const body = exampleOf(doc, bodySchema, { target: "pi" });
    expect(body).toEqual({ route: { source: {}, sink: { platform: "PLATFORM_OMF", target: "pi" } } });
    // Route.id is an IDENTIFIER, not REQUIRED, in the proto (it is also in answers), so the example leaves it out; a
    // client adds it as the document describes it.
    const route = { ...(body as { route: Json }).route, id: "from-openapi" };
    const endpoint = new URL(path.slice(1), new URL(doc.servers[0]!.url, url));
    const created = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TEST_KEYS["routes:admin"]}` },
      body: JSON.stringify({ route }),
    });
    expect(created.status).toBe(200);
    const createdJson = await created.json();
    const okSchema = (item.post!.responses as Record<string, { content: Record<string, { schema: Json }> }>)["200"]!.content[
      "application/json"
    ]!.schema;
    expect(conforms(doc, createdJson, okSchema)).toEqual([]);
    expect(createdJson).toMatchObject({ route: { id: "from-openapi", sink: { platform: "PLATFORM_OMF", target: "pi" } } });

    const [getPath, getItem] = Object.entries(doc.paths).find(([, i]) => i.get?.operationId === "RouteService_GetRoute_get")!;
    const params = getItem.get!.parameters as Array<{ name: string; in: string; required?: boolean; schema?: Json }>;
    const query = new URLSearchParams();
    for (const p of params.filter((p) => p.in === "query" && p.required)) {
      query.set(p.name, p.name === "message" ? JSON.stringify({ id: "from-openapi" }) : String((p.schema!.enum as string[])[0]));
    }
    expect([...query.keys()].sort()).toEqual(["encoding", "message"]);
    const got = await fetch(`${new URL(getPath.slice(1), new URL(doc.servers[0]!.url, url))}?${query}`, {
      headers: { authorization: `Bearer ${TEST_KEYS["routes:read"]}` },
    });
    expect(got.status).toBe(200);
    const gotJson = await got.json();
    const getOk = (getItem.get!.responses as Record<string, { content: Record<string, { schema: Json }> }>)["200"]!.content[
      "application/json"
    ]!.schema;
    expect(conforms(doc, gotJson, getOk)).toEqual([]);
    expect(gotJson).toMatchObject({ route: { id: "from-openapi", state: expect.any(String) } });

    // Errors have the documented Connect error body: no credential, then a role the key does not hold.
    const errorSchema = { $ref: "#/components/schemas/connect.error" };
    const anonymous = await fetch(endpoint, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(anonymous.status).toBe(401);
    const anonymousJson = await anonymous.json();
    expect(conforms(doc, anonymousJson, errorSchema)).toEqual([]);
    expect(anonymousJson).toMatchObject({ code: "unauthenticated" });
    const readOnly = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TEST_KEYS["routes:read"]}` },
      body: JSON.stringify({ route }),
    });
    expect(readOnly.status).toBe(403);
    expect(await readOnly.json()).toMatchObject({ code: "permission_denied" });
  });

  it("answers Connect GET for a gateway method and a proxied one; a method with side effects is not served by GET", async () => {
    const get = (path: string, message: unknown, key: string = TEST_KEYS.admin) =>
      fetch(`${url}${path}?encoding=json&message=${encodeURIComponent(JSON.stringify(message))}`, {
        headers: { authorization: `Bearer ${key}` },
      });
    const status = await get("/meridian.status.v1.StatusService/GetStatus", {}, TEST_KEYS["status:read"]);
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ services: expect.any(Array) });

    const twin = await get("/meridian.oci.v1.OciTwinManagerService/GetTwin", { twin: { key: "pump-1" } }, TEST_KEYS["platform:read"]);
    expect(twin.status).toBe(200);
    const twinJson = await twin.json();
    expect(twinJson).toEqual({ twin: { key: "pump-1", iotDomainId: "ocid1.iotdomain.x", kind: "TWIN_KIND_CUSTOM_ADAPTER" } });
    const getTwin = doc.paths["/meridian.oci.v1.OciTwinManagerService/GetTwin"]!.get!;
    const twinSchema = (getTwin.responses as Record<string, { content: Record<string, { schema: Json }> }>)["200"]!.content[
      "application/json"
    ]!.schema;
    expect(conforms(doc, twinJson, twinSchema)).toEqual([]);
    // The backend's error comes back through the gateway as a Connect error.
    const missing = await get("/meridian.oci.v1.OciTwinManagerService/GetTwin", { twin: { key: "nope" } }, TEST_KEYS["platform:read"]);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: "not_found" });

    const sideEffect = await get("/meridian.route.v1.RouteService/DeleteRoute", { id: "from-openapi" });
    expect(sideEffect.status).not.toBe(200);
    expect(doc.paths["/meridian.route.v1.RouteService/DeleteRoute"]!.get).toBeUndefined();
  });

  it("serves /docs/: the page, its scripts and styles from swagger-ui-dist, its initializer pointing at /openapi.json", async () => {
    const redirect = await fetch(`${url}/docs`, { redirect: "manual" });
    expect(redirect.status).toBe(301);
    expect(new URL(redirect.headers.get("location")!, `${url}/docs`).pathname).toBe("/docs/");
    const page = await fetch(`${url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toEqual(
      expect.arrayContaining([
        "./swagger-ui.css",
        "./swagger-ui-bundle.js",
        "./swagger-ui-standalone-preset.js",
        "./swagger-initializer.js",
      ]),
    );
    for (const asset of assets) {
      const res = await fetch(new URL(asset, `${url}/docs/`));
      expect(res.status, asset).toBe(200);
      expect(res.headers.get("content-type"), asset).toMatch(asset.endsWith(".js") ? /javascript/ : asset.endsWith(".css") ? /css/ : /png/);
      expect((await res.arrayBuffer()).byteLength, asset).toBeGreaterThan(100);
    }
    const bundle = await (await fetch(`${url}/docs/swagger-ui-bundle.js`)).text();
    expect(bundle).toContain("SwaggerUIBundle");
    const initializer = await (await fetch(`${url}/docs/swagger-initializer.js`)).text();
    expect(initializer).toContain('"../openapi.json"');
    expect(initializer).not.toContain("petstore");
    expect(new URL("../openapi.json", `${url}/docs/`).pathname).toBe("/openapi.json");
    // Only the package's own files by name: no source maps, no folders, no way out of it.
    expect((await fetch(`${url}/docs/swagger-ui.css.map`)).status).toBe(404);
    expect((await fetch(`${url}/docs/..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${url}/docs/nope.js`)).status).toBe(404);
  });
});
