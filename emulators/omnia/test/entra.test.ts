/** Against the real Entra ID emulator: its client-credentials tokens open the API; its key rotation is followed. */
import { DEFAULTS as ENTRA, type RunningEntraEmulator, startEntraEmulator } from "@meridian/emulator-entra";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOmniaEmulator, startOmniaEmulator } from "../src/index.js";
import { Api, RESOURCE, raw } from "./harness.js";

let entra: RunningEntraEmulator;
let omnia: RunningOmniaEmulator;

beforeAll(async () => {
  entra = await startEntraEmulator();
  omnia = await startOmniaEmulator({
    seedPoints: 100,
    auth: { authority: entra.issuer(), caPem: entra.caPem, requiredRole: "Timeseries.Read", keyRefreshCooldownMs: 0 },
  });
});
afterAll(async () => {
  await omnia?.stop();
  await entra?.stop();
});

async function clientCredentialsToken(scope: string): Promise<string> {
  const res = await raw(
    entra,
    "POST",
    `${entra.url}/${entra.tenantId}/oauth2/v2.0/token`,
    { "content-type": "application/x-www-form-urlencoded" },
    new URLSearchParams({
      grant_type: "client_credentials",
      client_id: ENTRA.confidentialClient.clientId,
      client_secret: ENTRA.confidentialClient.secret,
      scope,
    }).toString(),
  );
  expect(res.status, res.text).toBe(200);
  return res.json.access_token as string;
}

describe("tokens of the Entra ID emulator", () => {
  it("a client-credentials token for <resource>/.default reads data; a tampered one is 401", async () => {
    const token = await clientCredentialsToken(`${RESOURCE}/.default`);
    const api = new Api(omnia, token);
    const r = await api.get("/");
    expect(r.status).toBe(200);
    expect(r.json.data.items).toHaveLength(6);
    const [h, p, s] = token.split(".");
    const tampered = `${h}.${p}.${s!.slice(0, -4)}AAAA`;
    expect((await api.get("/", { token: tampered })).status).toBe(401);
  });

  it("after the provider rotates its signing key (dropping the old one) new tokens still verify", async () => {
    await entra.rotateSigningKey(true);
    const token = await clientCredentialsToken(`${RESOURCE}/.default`);
    expect((await new Api(omnia, token).get("/")).status).toBe(200);
  });
});
