import { mkdirSync } from "node:fs";
import { join } from "node:path";
import AxeBuilder from "@axe-core/playwright";
import { TEST_KEYS } from "@meridian/testing";
import { test as base, expect, type Page } from "@playwright/test";

export { expect };
export const ADMIN_KEY = TEST_KEYS.admin;
export const gatewayUrl = () => process.env.CONSOLE_URL!;
export const emulatorUrl = () => process.env.OMF_EMULATOR_URL!;
export const viewerKey = () => process.env.CONSOLE_VIEWER_KEY!;

const SCREENS = join(import.meta.dirname, "..", "test-results", "screens");

/**
 * Every test fails on an error in the page (an exception, or console.error): the console must run clean. A test that
 * expects the browser's own "Failed to load resource" line (a refused call it provokes) lists it in `allowedErrors`.
 */
export const test = base.extend<{ allowedErrors: RegExp | null; pageErrors: string[] }>({
  // One pattern, not a list: Playwright would read a two-element list as [value, options].
  allowedErrors: [null, { option: true }],
  pageErrors: [
    async ({ page, allowedErrors }, use) => {
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
      page.on("console", (m) => {
        if (m.type() === "error" && !allowedErrors?.test(m.text())) errors.push(`console.error: ${m.text()}`);
      });
      await use(errors);
      expect(errors, "errors in the page").toEqual([]);
    },
    { auto: true },
  ],
  // biome-ignore lint/correctness/noEmptyPattern: Playwright reads a fixture's dependencies from this pattern; none here
  baseURL: async ({}, use) => use(gatewayUrl()),
});

export async function signIn(page: Page, key = ADMIN_KEY): Promise<void> {
  await page.goto("/");
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await expect(page.getByRole("navigation", { name: "Pages" })).toBeVisible();
}

/** No serious or critical axe violation on the page as it is now; a full-page screenshot kept under `name`. */
export async function checkPage(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENS, { recursive: true });
  await page.screenshot({ path: join(SCREENS, `${name}.png`), fullPage: true });
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  expect(bad, `axe violations on ${name}`).toEqual([]);
}

/** A Connect JSON call to the gateway, as curl would make it. */
export async function api<T = Record<string, unknown>>(
  method: string,
  body: unknown,
  key = ADMIN_KEY,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${gatewayUrl()}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

/** One event per call through the gateway's Publish, from the API platform. */
export async function publish(connection: string, device: string, point: string, value: number): Promise<void> {
  const res = await api("meridian.telemetry.v1.TelemetryService/Publish", {
    events: [
      {
        id: `${connection}-${device}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
        source: { platform: "PLATFORM_API", connection, device },
        observedTime: new Date().toISOString(),
        points: [{ name: point, unit: "degC", doubleValue: value }],
      },
    ],
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

/** The values the OMF emulator holds in one scope (pi, adh/{tenant}/{namespace}), over every container. */
export async function emulatorValueCount(scope: string): Promise<number> {
  const res = await fetch(`${emulatorUrl()}/_emulator/state?scope=${encodeURIComponent(scope)}&values=false`);
  const doc = (await res.json()) as { scopes: Record<string, { containers?: Record<string, { valueCount: number }> } | undefined> };
  return Object.values(doc.scopes[scope]?.containers ?? {}).reduce((n, c) => n + c.valueCount, 0);
}

/** A PI Web API endpoint on the OMF emulator (OMF 1.1, Basic auth), made through the gateway. */
export async function createPiEndpoint(id: string): Promise<void> {
  const res = await api("meridian.omf.v1.OmfSenderService/CreateEndpoint", {
    endpoint: {
      id,
      kind: "ENDPOINT_KIND_PI",
      url: `${emulatorUrl()}/piwebapi`,
      allowHttp: true,
      username: "meridian",
      secret: "meridian",
      dataServerName: "MERIDIAN-PI",
      omfVersion: "1.1",
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}
