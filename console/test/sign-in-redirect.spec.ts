import type { Page } from "@playwright/test";
import { checkPage, expect, test } from "./fixtures.js";
import { SIGN_IN_USERS } from "./stack-sign-in.js";

/**
 * Sign-in by redirect (authorization code with PKCE) against the Entra emulator the stack starts as the console's
 * OIDC provider (test/stack-sign-in.ts): the gateway verifies the access token by the emulator's keys and reads the
 * person's roles from its `roles` claim, which the emulator's directory assigns. The emulator's pages are HTTPS with
 * its own CA, which the browser is told to accept.
 */
test.describe.configure({ mode: "serial" });
test.use({ ignoreHTTPSErrors: true });

const PROVIDER_BUTTON = { name: "Sign in with Entra ID" } as const;

/** Starts at `path`, goes to the provider, picks the user on its page; resolves back in the console. */
async function signInByRedirect(page: Page, user: { displayName: string }, path = "/"): Promise<void> {
  await page.goto(path);
  await page.getByRole("button", PROVIDER_BUTTON).click();
  await expect(page).toHaveURL(/\/oauth2\/v2\.0\/authorize\?/);
  await page.getByRole("button", { name: new RegExp(`^${user.displayName} `) }).click();
  await expect(page.getByRole("navigation", { name: "Pages" })).toBeVisible();
}

/** The emulator's settings, through its plain-HTTP admin port. */
async function emulatorSettings(settings: Record<string, number>): Promise<void> {
  const res = await fetch(`${process.env.ENTRA_SIGN_IN_ADMIN_URL}/_emulator/settings`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(settings),
  });
  expect(res.status, await res.text()).toBe(200);
}

test("the sign-in page offers the provider beside the API key, and passes axe", async ({ page }) => {
  await page.goto("/");
  await expect(page.getByRole("button", PROVIDER_BUTTON)).toBeVisible();
  await expect(page.getByLabel("API key")).toBeVisible();
  await checkPage(page, "sign-in-redirect");
});

test("an admin user of the directory signs in by redirect: the console works with their roles; sign out forgets the token", async ({
  page,
}) => {
  await signInByRedirect(page, SIGN_IN_USERS.admin, "/routes");
  // Back on the page the sign-in started from, with no code or state left in the address.
  await expect(page.getByRole("heading", { level: 1, name: "Routes" })).toBeVisible();
  expect(new URL(page.url()).pathname).toBe("/routes");
  expect(new URL(page.url()).search).toBe("");
  await expect(page.getByTestId("caller")).toContainText("routes:admin");
  await expect(page.getByRole("button", { name: "Create route" })).toBeEnabled();
  await expect(page.getByLabel("ID")).toBeEnabled();
  await page.getByRole("link", { name: "Overview" }).click();
  await expect(page.getByTestId("services").locator('tr[data-service="gateway"]')).toContainText("serving");
  await checkPage(page, "overview-signed-in-by-redirect");
  // The services behind the gateway take the same token (the gateway passes it on): the Platforms page reads them all.
  await page.getByRole("link", { name: "Platforms" }).click();
  await expect(page.getByTestId("iotc-applications").locator(`tr[data-application="${process.env.IOTC_APPLICATION}"]`)).toContainText(
    "Console plant",
  );
  await expect(page.getByRole("alert")).toHaveCount(0);

  // What the tab keeps: the access token and its expiry, nothing of the finished sign-in.
  const kept = await page.evaluate(() => Object.keys(sessionStorage).sort());
  expect(kept).toEqual(["meridian.console.credential", "meridian.console.credential-expires"]);
  await page.reload();
  await expect(page.getByRole("heading", { level: 1, name: "Platforms" })).toBeVisible();
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("button", PROVIDER_BUTTON)).toBeVisible();
  expect(await page.evaluate("sessionStorage.length")).toBe(0);
});

test("a user with read roles only sees the admin actions disabled", async ({ page }) => {
  await signInByRedirect(page, SIGN_IN_USERS.viewer);
  await expect(page.getByTestId("caller")).toContainText("routes:read");
  await expect(page.getByTestId("caller")).not.toContainText("admin");
  await page.getByRole("link", { name: "Routes" }).click();
  await expect(page.getByTestId("create-not-allowed")).toContainText("routes:admin");
  await expect(page.getByRole("button", { name: "Create route" })).toBeDisabled();
});

test("an answer whose state was tampered with is refused with a clear message, and nothing is kept", async ({ page }) => {
  await page.goto("/");
  await page.getByRole("button", PROVIDER_BUTTON).click();
  await expect(page).toHaveURL(/\/oauth2\/v2\.0\/authorize\?/);
  // The provider answers whatever state the request carries: change it on the way there.
  const authorize = new URL(page.url());
  authorize.searchParams.set("state", "forged-state");
  await page.goto(authorize.href);
  const callback = page.waitForRequest((r) => r.url().includes("/sign-in/callback?"));
  await page.getByRole("button", { name: new RegExp(`^${SIGN_IN_USERS.admin.displayName} `) }).click();
  await expect(page.getByRole("alert")).toContainText("does not belong to the sign-in this tab started (its state does not match)");
  await expect(page.getByRole("navigation", { name: "Pages" })).toHaveCount(0);
  expect(new URL(page.url()).search).toBe("");
  expect(await page.evaluate("sessionStorage.length")).toBe(0);
  await checkPage(page, "sign-in-refused");
  // The provider's answer again (a reload, a replay): the tab has no sign-in left to complete with it.
  await page.goto((await callback).url());
  await expect(page.getByRole("alert")).toContainText("No sign-in was started in this tab, or it was already completed.");
  await expect(page.getByRole("navigation", { name: "Pages" })).toHaveCount(0);
});

test.describe("expiry", () => {
  test.use({ allowedErrors: /Failed to load resource: the server responded with a status of 401/ });

  test("when the access token expires, the console says so with the same 'sign in again' banner as a revoked key", async ({ page }) => {
    await emulatorSettings({ tokenLifetimeSeconds: 5 });
    try {
      await signInByRedirect(page, SIGN_IN_USERS.admin);
    } finally {
      await emulatorSettings({ tokenLifetimeSeconds: 3600 });
    }
    const banner = page.getByRole("alert").filter({ hasText: "Your sign-in has expired." });
    await expect(banner).toBeVisible({ timeout: 15_000 });
    await banner.getByRole("button", { name: "Sign in again" }).click();
    await expect(page.getByRole("button", PROVIDER_BUTTON)).toBeVisible();
    expect(await page.evaluate("sessionStorage.length")).toBe(0);
  });
});
