import { api, checkPage, createPiEndpoint, emulatorUrl, expect, publish, signIn, test, viewerKey } from "./fixtures.js";

/**
 * Editing a route on the Routes page: the create form, filled in, saved with UpdateRoute; the change reaches PI (the
 * OMF emulator behind omf-sender in test/stack.ts); the API's messages beside their fields; a conflict when someone
 * else changed the route first; a viewer's Edit disabled.
 */
test.describe.configure({ mode: "serial" });

const ROUTE = "edit-e2e";

/** Values PI holds in the containers of one connection's events. */
async function piValues(connection: string): Promise<number> {
  const res = await fetch(`${emulatorUrl()}/_emulator/state?scope=pi&values=false`);
  const doc = (await res.json()) as { scopes: { pi?: { containers?: Record<string, { id: string; valueCount: number }> } } };
  return Object.values(doc.scopes.pi?.containers ?? {})
    .filter((c) => c.id.includes(`.${connection}.`))
    .reduce((n, c) => n + c.valueCount, 0);
}

test.describe("editing a route", () => {
  // The refusals the test provokes: invalid_argument (400) and aborted (409).
  test.use({ allowedErrors: /Failed to load resource: the server responded with a status of (400|409)/ });

  test("the filter changed in the form takes effect at PI; bad input is shown by its field; a stale edit is refused", async ({ page }) => {
    await createPiEndpoint("pi-edit");
    const created = await api("meridian.route.v1.RouteService/CreateRoute", {
      route: {
        id: ROUTE,
        source: { platform: "PLATFORM_API", connection: "edit-a" },
        sink: { platform: "PLATFORM_OMF", target: "pi-edit" },
        options: { lingerMs: "50" },
      },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    await publish("edit-a", "d", "t", 1);
    await expect.poll(() => piValues("edit-a"), { timeout: 30_000 }).toBe(1);

    await signIn(page);
    await page.getByRole("link", { name: "Routes" }).click();
    const row = page.locator(`tr[data-route="${ROUTE}"]`);
    await expect(row).toContainText("API/edit-a/*");
    await row.getByRole("button", { name: `Edit ${ROUTE}` }).click();
    await expect(page.getByRole("heading", { name: `Edit route ${ROUTE}` })).toBeVisible();
    await expect(page.getByLabel("ID")).toHaveValue(ROUTE);
    await expect(page.getByLabel("Connection")).toHaveValue("edit-a");
    await expect(page.getByLabel("Target")).toHaveValue("pi-edit");
    await expect(page.getByLabel("Options")).toHaveValue("lingerMs=50");

    // The API's own message, next to the field it names.
    await page.getByLabel("Connection").fill("edit-b");
    await page.getByLabel("Options").fill("lingerMs=50\nbad key=1");
    await page.getByRole("button", { name: "Save changes" }).click();
    await expect(page.getByTestId("options-error")).toContainText("a key is 1-64 letters");
    await expect(page.getByLabel("Options")).toHaveAttribute("aria-invalid", "true");
    await expect(row).toContainText("API/edit-a/*");

    await page.getByLabel("Options").fill("lingerMs=50");
    await page.getByRole("button", { name: "Save changes" }).click();
    await expect(page.getByRole("status")).toContainText(`Route ${ROUTE} updated.`);
    await expect(row).toContainText("API/edit-b/*");
    await expect(page.getByRole("heading", { name: "Create a route" })).toBeVisible();
    await checkPage(page, "routes-edited");

    // After the change: the new connection's events reach PI, the old one's no longer do.
    await publish("edit-a", "d", "t", 2);
    await publish("edit-b", "d", "t", 3);
    await publish("edit-b", "d", "t", 4);
    await expect.poll(() => piValues("edit-b"), { timeout: 30_000 }).toBe(2);
    expect(await piValues("edit-a")).toBe(1);

    // Someone else saves first: this edit is refused, nothing is overwritten, and Reload shows what they saved.
    await row.getByRole("button", { name: `Edit ${ROUTE}` }).click();
    const current = await api<{ route: Record<string, unknown> & { revision: string } }>("meridian.route.v1.RouteService/GetRoute", {
      id: ROUTE,
    });
    const theirs = await api("meridian.route.v1.RouteService/UpdateRoute", {
      route: { ...current.body.route, displayName: "renamed elsewhere" },
      revision: current.body.route.revision,
    });
    expect(theirs.status, JSON.stringify(theirs.body)).toBe(200);
    await page.getByLabel("Display name").fill("mine");
    await page.getByRole("button", { name: "Save changes" }).click();
    await expect(page.getByTestId("route-conflict")).toContainText(`Someone changed route ${ROUTE} since you opened it`);
    await page.getByRole("button", { name: "Reload route" }).click();
    await expect(page.getByLabel("Display name")).toHaveValue("renamed elsewhere");
    await expect(page.getByTestId("route-conflict")).toHaveCount(0);
    await page.getByRole("button", { name: "Cancel edit" }).click();
  });

  test("a viewer sees Edit disabled, with the role it needs", async ({ page }) => {
    await signIn(page, viewerKey());
    await page.getByRole("link", { name: "Routes" }).click();
    const edit = page.locator(`tr[data-route="${ROUTE}"]`).getByRole("button", { name: `Edit ${ROUTE}` });
    await expect(edit).toBeDisabled();
    await expect(edit).toHaveAttribute("title", "Needs routes:admin");
  });
});
