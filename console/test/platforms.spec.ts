import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { gatewayConfig, startGateway } from "@meridian/gateway";
import { startForTest, testLogger } from "@meridian/testing";
import { ADMIN_KEY, api, checkPage, expect, signIn, test, viewerKey } from "./fixtures.js";

/**
 * The Platforms page's IoT Central, Omnia and OCI sections in Chromium against iotc-bridge, omnia-reader and
 * oci-twin-manager and their emulators (test/stack-platforms.ts), through the gateway. What the page shows is compared
 * with what the emulators hold, read from their own admin or application API.
 */
test.describe.configure({ mode: "serial" });

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: test/stack.ts sets it`);
  return v;
};

/** A JSON call to an emulator's HTTPS surface, trusting its CA. */
function emulatorCall<T>(url: string, caFile: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const payload = init.body === undefined ? undefined : JSON.stringify(init.body);
  return new Promise<{ status: number; json: T }>((resolve, reject) => {
    const req = request(
      url,
      {
        method: init.method ?? "GET",
        ca: readFileSync(caFile, "utf8"),
        headers: {
          ...init.headers,
          ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) }),
        },
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          try {
            resolve({ status: res.statusCode ?? 0, json: (text ? JSON.parse(text) : null) as T });
          } catch (err) {
            reject(new Error(`${url}: not JSON (${res.statusCode}): ${text.slice(0, 200)} (${(err as Error).message})`));
          }
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

/** "2026-12-02T08:00:00.123Z" (or with 6 or 9 fraction digits) as nanoseconds since the epoch. */
function nsOf(rfc3339: string): bigint {
  const m = /^(.{19})(?:\.(\d+))?Z$/.exec(rfc3339);
  if (!m) throw new Error(`not RFC 3339 UTC: ${rfc3339}`);
  return (BigInt(Date.parse(`${m[1]}Z`)) / 1000n) * 1_000_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

async function openPlatforms(page: Parameters<typeof signIn>[0], key = ADMIN_KEY) {
  await signIn(page, key);
  await page.getByRole("link", { name: "Platforms" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Platforms" })).toBeVisible();
}

test("IoT Central: a device registered through the API shows connected; a command from the application is listed and answered from the page", async ({
  page,
}) => {
  const application = env("IOTC_APPLICATION");
  const deviceId = "console-pump-1";
  const registered = await api<{ device: { state: string } }>("meridian.iotc.v1.IotcBridgeService/RegisterDevice", {
    applicationId: application,
    deviceId,
  });
  expect(registered.status, JSON.stringify(registered.body)).toBe(200);

  await openPlatforms(page);
  const app = page.getByTestId("iotc-applications").locator(`tr[data-application="${application}"]`);
  await expect(app).toContainText("Console plant");
  await expect(app).toContainText("group_key");
  // By keyboard: the button takes focus and Enter opens the application.
  await app.getByRole("button", { name: `Devices and commands of ${application}` }).focus();
  await page.keyboard.press("Enter");
  const device = page.getByTestId("iotc-devices").locator(`tr[data-device="${deviceId}"]`);
  await expect(device.getByTestId("device-state")).toHaveText("connected");
  await expect(device).toContainText("azure-devices.net");
  await device.getByRole("button", { name: `Twin of ${deviceId}` }).click();
  await expect(page.getByTestId("iotc-twin")).toContainText('"$version"');

  // A command from IoT Central's application API (a direct method to the device, 30 s to answer).
  const commands = page.getByTestId("iotc-commands");
  await expect(commands.getByTestId("commands-state")).toContainText("Watching");
  const invoked = emulatorCall<{ responseCode: number; response: unknown }>(
    `${env("IOTC_EMULATOR_URL")}/api/devices/${deviceId}/commands/reboot?api-version=2022-07-31`,
    env("IOTC_EMULATOR_CA_FILE"),
    {
      method: "POST",
      body: { request: { delaySeconds: 3 }, responseTimeout: 30 },
      headers: { authorization: env("IOTC_EMULATOR_API_TOKEN") },
    },
  );
  const row = commands.locator("tr[data-command]", { hasText: '{"delaySeconds":3}' });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText("reboot");
  await expect(row).toContainText(deviceId);
  await row.getByRole("button", { name: `Answer reboot to ${deviceId}` }).click();
  await page.getByLabel("Status").fill("202");
  await page.getByLabel("Payload (JSON)").fill('{"accepted": true}');
  await page.getByRole("button", { name: "Send answer" }).click();
  await expect(row.getByTestId("command-answer")).toHaveText("202, delivered");
  const answer = await invoked;
  expect(answer.status, JSON.stringify(answer.json)).toBe(201);
  expect(answer.json).toMatchObject({ responseCode: 202, response: { accepted: true } });
  await checkPage(page, "platforms-iotc");
});

test("Omnia: a reader's series data on the page are the emulator's datapoints; pause and resume", async ({ page }) => {
  const [pressure, temperature] = env("OMNIA_SERIES_IDS").split(",");
  const created = await api("meridian.omnia.v1.OmniaReaderService/CreateReader", {
    reader: {
      id: "console-omnia",
      series: [{ id: pressure }, { id: temperature }],
      intervalSeconds: 5,
      startTime: new Date(Date.now() - 30 * 60_000).toISOString(),
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(200);

  await openPlatforms(page);
  const reader = page.getByTestId("omnia-readers").locator('tr[data-reader="console-omnia"]');
  await expect(reader.getByTestId("reader-state")).toHaveText("running");
  // The last half hour (less the reader's lag) reached the bus.
  await expect(reader.locator("td.num").nth(3)).not.toHaveText("0");
  await reader.getByRole("button", { name: "Series of console-omnia" }).click();
  const series = page.getByTestId("omnia-series").locator(`tr[data-series="${pressure}"]`);
  await expect(series).toContainText("JSV.20PT1234.PV");
  await series.getByRole("button", { name: "Data of JSV.20PT1234.PV" }).click();

  // The emulator's newest points of the series: the page shows the hour before the latest, newest first.
  const state = await emulatorCall<{ series: Array<{ points: Array<{ timeNs: string; value: number; status: number }> }> }>(
    `${env("OMNIA_EMULATOR_URL")}/_emulator/state?id=${pressure}&points=true&maxPoints=100`,
    env("OMNIA_EMULATOR_CA_FILE"),
  );
  const points = state.json.series[0]!.points;
  const latest = BigInt(points.at(-1)!.timeNs);
  const hour = points.filter((p) => BigInt(p.timeNs) > latest - 3_600_000_000_000n).reverse();
  expect(hour.length).toBe(60);
  const data = page.getByTestId("omnia-data");
  await expect(data.getByTestId("omnia-data-summary")).toContainText(`${hour.length} datapoints in the 1 hour`);
  const rows = data.locator("tbody tr");
  await expect(rows).toHaveCount(hour.length);
  const shown = await rows.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")));
  expect(shown.map(([t, v, s]) => [nsOf(t!).toString(), v, s])).toEqual(
    hour.map((p) => [p.timeNs, String(p.value), p.status === 192 ? "good" : p.status === 64 ? "questionable" : "bad"]),
  );
  await checkPage(page, "platforms-omnia");

  await reader.getByRole("button", { name: "Pause console-omnia" }).click();
  await expect(page.getByTestId("omnia-notice")).toHaveText("Reader console-omnia paused.");
  await expect(reader.getByTestId("reader-state")).toHaveText("paused");
  await reader.getByRole("button", { name: "Resume console-omnia" }).click();
  await expect(reader.getByTestId("reader-state")).toHaveText("running");
});

test("OCI: a twin created through the API shows its content and recent data", async ({ page }) => {
  const created = await api("meridian.oci.v1.OciTwinManagerService/CreateTwin", {
    twin: {
      key: "console-env",
      displayName: "console-env-01",
      externalKey: "console-env-device",
      authId: env("OCI_AUTH_ID"),
      deviceSecret: env("OCI_DEVICE_SECRET"),
      model: {
        specUri: "dtmi:com:meridian:console:env;1",
        spec: {
          "@context": ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:historization;1"],
          "@id": "dtmi:com:meridian:placeholder;1",
          "@type": "Interface",
          contents: [
            { "@type": ["Telemetry", "Historized"], name: "temperature", schema: "double" },
            { "@type": ["Telemetry", "Historized"], name: "humidity", schema: "double" },
          ],
        },
      },
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(200);
  // As the twin's device would post it (the default adapter maps it onto the model).
  const sent = await api("meridian.oci.v1.OciTwinManagerService/SendTwinData", {
    twin: { key: "console-env" },
    payload: { temperature: 21.5, humidity: 40.25 },
  });
  expect(sent.status, JSON.stringify(sent.body)).toBe(200);

  await openPlatforms(page);
  const twin = page.getByTestId("oci-twins").locator('tr[data-twin="console-env"]');
  await expect(twin).toContainText("model, default adapter");
  await expect(twin).toContainText("active");
  await expect(twin).toContainText("dtmi:com:meridian:console:env;1");
  await twin.getByRole("button", { name: "Details of console-env" }).click();
  const detail = page.getByTestId("oci-twin");
  const content = detail.getByTestId("twin-content");
  await expect(content.locator('tr[data-content="temperature"] td')).toHaveText("21.5", { timeout: 30_000 });
  await expect(content.locator('tr[data-content="humidity"] td')).toHaveText("40.25");

  const data = detail.getByTestId("twin-data");
  await expect(data.locator("tbody tr", { hasText: "temperature" })).toContainText("21.5");
  await expect(data.locator("tbody tr", { hasText: "humidity" })).toContainText("40.25");
  await checkPage(page, "platforms-oci");
  // The raw payload as the device posted it, chosen by keyboard.
  await data.getByLabel("Data set").focus();
  await data.getByLabel("Data set").selectOption({ label: "raw" });
  await expect(data.locator("tbody tr").first()).toContainText('{"temperature":21.5,"humidity":40.25}');

  await page.emulateMedia({ colorScheme: "dark" });
  await checkPage(page, "platforms-dark");
});

test("a key without platform:admin sees pause, resume and answers disabled with the role named", async ({ page }) => {
  await openPlatforms(page, viewerKey());
  const reader = page.getByTestId("omnia-readers").locator('tr[data-reader="console-omnia"]');
  const pause = reader.getByRole("button", { name: "Pause console-omnia" });
  await expect(pause).toBeDisabled();
  await expect(pause).toHaveAttribute("title", "Needs platform:admin");
  await expect(page.getByText("Your key lacks platform:admin: you can look, not pause or resume readers.")).toBeVisible();
  // Reading is allowed: platform:read and telemetry:read.
  await expect(reader.getByRole("button", { name: "Series of console-omnia" })).toBeEnabled();
  const application = env("IOTC_APPLICATION");
  await page.getByRole("button", { name: `Devices and commands of ${application}` }).click();
  const answer = page.getByTestId("iotc-commands").getByRole("button", { name: /^Answer reboot/ });
  await expect(answer).toBeDisabled();
  await expect(answer).toHaveAttribute("title", "Needs platform:admin");
  await expect(page.getByText("Your key lacks platform:admin: you can look, not answer commands.")).toBeVisible();
  const refused = await api<{ code: string }>(
    "meridian.omnia.v1.OmniaReaderService/PauseReader",
    { id: "console-omnia", paused: true },
    viewerKey(),
  );
  expect(refused.status).toBe(403);
  await checkPage(page, "platforms-viewer");
});

test.describe("a gateway without the platform services", () => {
  // No error in the page either: the page asks the gateway which services it fronts (/console/platforms.json) and
  // calls none of the others, whose 404 the browser would log.
  test("each platform section says its service is not available, and makes no call to it", async ({ page }) => {
    const calls: string[] = [];
    page.on("request", (r) => {
      if (/\/meridian\.(omf|idigi|iotc|omnia|oci)\.v1\./.test(r.url())) calls.push(r.url());
    });
    const bare = await startForTest(
      startGateway,
      gatewayConfig,
      {
        NATS_URL: env("CONSOLE_NATS_URL"),
        AUTH_IDENTITIES_FILE: env("CONSOLE_IDENTITIES_FILE"),
        CONSOLE_DIR: join(import.meta.dirname, "..", "dist"),
      },
      {},
      testLogger(),
    );
    try {
      await page.goto(`${bare.service.url}/platforms`);
      await page.getByLabel("API key").fill(ADMIN_KEY);
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect(page.getByRole("heading", { level: 1, name: "Platforms" })).toBeVisible();
      const absent = page.getByTestId("not-available");
      await expect(absent).toHaveCount(5);
      for (const service of [
        "OmfSenderService",
        "IdigiListenerService",
        "IotcBridgeService",
        "OmniaReaderService",
        "OciTwinManagerService",
      ]) {
        await expect(page.getByText(`${service} is not available: the gateway does not front it`)).toBeVisible();
      }
      await expect(page.getByRole("alert")).toHaveCount(0);
      expect(calls).toEqual([]);
      await checkPage(page, "platforms-not-available");
    } finally {
      await bare.stop();
    }
  });
});
