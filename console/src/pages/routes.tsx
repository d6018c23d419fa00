import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Route, RouteSchema, RouteState } from "@meridian/contracts/meridian/route/v1/route_pb";
import { RouteService } from "@meridian/contracts/meridian/route/v1/route_service_pb";
import { StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { Platform, SourceFilterSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { useState } from "preact/hooks";
import { describeError } from "../api.js";
import { fieldViolations, time } from "../format.js";
import { mayCall, roleOf } from "../roles.js";
import { rolesOf, useConsole } from "../ui/context.js";
import { usePoll } from "../ui/poll.js";
import { ScrollRegion } from "../ui/scroll-region.js";

const PLATFORM_NAMES: Record<number, string> = {
  [Platform.UNSPECIFIED]: "any",
  [Platform.OMF]: "OMF (PI)",
  [Platform.IOT_CENTRAL]: "IoT Central",
  [Platform.IDIGI]: "iDigi",
  [Platform.OMNIA]: "Omnia",
  [Platform.OCI_IOT]: "OCI IoT",
  [Platform.API]: "API",
};
const SOURCES = [Platform.UNSPECIFIED, Platform.IDIGI, Platform.OMNIA, Platform.IOT_CENTRAL, Platform.OCI_IOT, Platform.API];
/** The platforms with a sink service; the API says so too (route.sink.platform), this only keeps the choice short. */
const SINKS = [Platform.OMF, Platform.IOT_CENTRAL, Platform.OCI_IOT];

interface Form {
  id: string;
  displayName: string;
  sourcePlatform: Platform;
  connection: string;
  device: string;
  sinkPlatform: Platform;
  target: string;
  options: string;
  disabled: boolean;
}
const EMPTY: Form = {
  id: "",
  displayName: "",
  sourcePlatform: Platform.UNSPECIFIED,
  connection: "",
  device: "",
  sinkPlatform: Platform.OMF,
  target: "",
  options: "",
  disabled: false,
};

/** A route as the form shows it, for editing. */
function formOf(r: Route): Form {
  return {
    id: r.id,
    displayName: r.displayName,
    sourcePlatform: r.source?.platform ?? Platform.UNSPECIFIED,
    connection: r.source?.connection ?? "",
    device: r.source?.device ?? "",
    sinkPlatform: r.sink?.platform ?? Platform.OMF,
    target: r.sink?.target ?? "",
    options: Object.entries(r.options)
      .map(([k, v]) => `${k}=${v}`)
      .join("\n"),
    disabled: r.disabled,
  };
}

/** Which form field shows an API violation, by the violation's field path. */
function fieldOf(path: string): keyof Form | "" {
  if (path === "route.id") return "id";
  if (path.startsWith("route.display_name")) return "displayName";
  if (path === "route.source" || path === "route.source.platform") return "sourcePlatform";
  if (path.startsWith("route.source.connection")) return "connection";
  if (path.startsWith("route.source.device")) return "device";
  if (path === "route.sink" || path === "route.sink.platform") return "sinkPlatform";
  if (path.startsWith("route.sink.target")) return "target";
  if (path.startsWith("route.options")) return "options";
  if (path === "revision") return "";
  return "";
}

/** "key=value" per line; a line without "=" is a problem of the form, reported before sending. */
function parseOptions(text: string): { options: Record<string, string>; bad?: string } {
  const options: Record<string, string> = {};
  for (const line of text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean)) {
    const at = line.indexOf("=");
    if (at <= 0) return { options, bad: `"${line}" is not key=value` };
    options[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return { options };
}

export function RoutesPage() {
  const { client, caller } = useConsole();
  const roles = rolesOf(caller);
  const mayCreate = mayCall(roles, RouteService.method.createRoute);
  const mayDelete = mayCall(roles, RouteService.method.deleteRoute);
  const mayUpdate = mayCall(roles, RouteService.method.updateRoute);
  const routes = usePoll(async (signal) => {
    const [list, status] = await Promise.all([
      client(RouteService).listRoutes({}, { signal }),
      client(StatusService)
        .getStatus({}, { signal })
        .catch(() => undefined),
    ]);
    const pending = new Map<string, bigint>();
    for (const s of status?.services ?? []) for (const p of s.pipelines) pending.set(p.name, (pending.get(p.name) ?? 0n) + p.pending);
    return { routes: list.routes, pending };
  }, 3000);

  const [form, setForm] = useState<Form>(EMPTY);
  const [errors, setErrors] = useState<Map<string, string>>(new Map());
  const [notice, setNotice] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [deleting, setDeleting] = useState<Route | undefined>();
  const [purge, setPurge] = useState(false);
  /** The route being edited, as read: its revision is the one the update names. */
  const [editing, setEditing] = useState<Route | undefined>();
  const [conflict, setConflict] = useState<string | undefined>();
  const mayWrite = editing ? mayUpdate : mayCreate;

  const edit = (r: Route) => {
    setEditing(r);
    setForm(formOf(r));
    setErrors(new Map());
    setConflict(undefined);
    setNotice(undefined);
    document.getElementById("route-form-h")?.scrollIntoView();
  };
  const stopEditing = () => {
    setEditing(undefined);
    setForm(EMPTY);
    setErrors(new Map());
    setConflict(undefined);
  };
  /** After a conflict: the route as it is now, with its revision, in the form (the user's changes are dropped). */
  const reload = async () => {
    if (!editing) return;
    try {
      const res = await client(RouteService).getRoute({ id: editing.id });
      if (res.route) edit(res.route);
    } catch (err) {
      setErrors(new Map([["", describeError(err)]]));
    }
  };

  const set = (k: keyof Form) => (e: Event) => {
    const el = e.currentTarget as HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
    setForm({ ...form, [k]: k === "sourcePlatform" || k === "sinkPlatform" ? Number(el.value) : el.value });
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setNotice(undefined);
    const { options, bad } = parseOptions(form.options);
    if (bad) {
      setErrors(new Map([["options", bad]]));
      return;
    }
    const source =
      form.sourcePlatform || form.connection || form.device
        ? create(SourceFilterSchema, { platform: form.sourcePlatform, connection: form.connection.trim(), device: form.device.trim() })
        : undefined;
    // An edit sends the route as read with the form's changes; its id and sink stay (the API refuses other ones).
    const route = editing
      ? create(RouteSchema, { ...editing, displayName: form.displayName.trim(), source, options, disabled: form.disabled })
      : create(RouteSchema, {
          id: form.id.trim(),
          displayName: form.displayName.trim(),
          source,
          sink: { platform: form.sinkPlatform, target: form.target.trim() },
          options,
          disabled: form.disabled,
        });
    setBusy(true);
    setConflict(undefined);
    try {
      if (editing) {
        const res = await client(RouteService).updateRoute({ route, revision: editing.revision });
        const change = res.route?.sourceChange;
        setNotice(
          `Route ${editing.id} updated.` +
            (change ? ` Events stored before the change are still delivered by the previous source; later ones by the new.` : ""),
        );
        stopEditing();
      } else {
        const res = await client(RouteService).createRoute({ route });
        setErrors(new Map());
        setForm(EMPTY);
        setNotice(`Route ${res.route?.id} created.`);
      }
      routes.refresh();
    } catch (err) {
      const ce = ConnectError.from(err);
      const byField = new Map<string, string>();
      if (editing && ce.code === Code.Aborted) {
        setConflict(
          `Someone changed route ${editing.id} since you opened it (your edit was of revision ${editing.revision}); nothing was saved. ` +
            "Reload it to see the current values, then make your change again.",
        );
      } else if (ce.code === Code.InvalidArgument) {
        for (const [path, reason] of fieldViolations(ce.rawMessage)) {
          const f = fieldOf(path);
          byField.set(f, byField.has(f) ? `${byField.get(f)}; ${reason}` : reason);
        }
      } else byField.set("", describeError(err));
      setErrors(byField);
    } finally {
      setBusy(false);
    }
  };

  const confirmDelete = async () => {
    if (!deleting) return;
    try {
      const res = await client(RouteService).deleteRoute({ id: deleting.id, purge });
      setNotice(
        res.route?.state === RouteState.DRAINING
          ? `Route ${deleting.id} is draining: its sink delivers what waits, then it goes.`
          : `Route ${deleting.id} deleted${res.dropped > 0n ? `, ${res.dropped} waiting events dropped` : ""}.`,
      );
      routes.refresh();
    } catch (err) {
      setNotice(describeError(err));
    }
    setDeleting(undefined);
    setPurge(false);
  };

  const err = (k: keyof Form) =>
    errors.get(k) ? (
      <span id={`${k}-error`} class="field-error" data-testid={`${k}-error`}>
        {errors.get(k)}
      </span>
    ) : null;
  const described = (k: keyof Form) => ({ "aria-describedby": errors.get(k) ? `${k}-error` : undefined, "aria-invalid": errors.has(k) });
  const data = routes.data;

  return (
    <div class="page">
      {routes.error && (
        <p class="banner error" role="alert">
          {routes.error}
        </p>
      )}
      {notice && (
        <p class="banner" role="status">
          {notice}
        </p>
      )}
      <section aria-labelledby="list-h">
        <h2 id="list-h">Routes</h2>
        <ScrollRegion label="Routes list">
          <table data-testid="routes">
            <thead>
              <tr>
                <th scope="col">ID</th>
                <th scope="col">Source</th>
                <th scope="col">Sink</th>
                <th scope="col">Target</th>
                <th scope="col">State</th>
                <th scope="col">Pending</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data?.routes.map((r) => (
                <tr key={r.id} data-route={r.id}>
                  <th scope="row">{r.id}</th>
                  <td>
                    {PLATFORM_NAMES[r.source?.platform ?? 0]}/{r.source?.connection || "*"}/{r.source?.device || "*"}
                  </td>
                  <td>{PLATFORM_NAMES[r.sink?.platform ?? 0]}</td>
                  <td>{r.sink?.target}</td>
                  <td>{r.state === RouteState.DRAINING ? "draining" : r.disabled ? "disabled" : "active"}</td>
                  <td class="num">{String(data.pending.get(r.id) ?? r.drain?.pending ?? "—")}</td>
                  <td>{time(r.createTime)}</td>
                  <td class="actions">
                    <button
                      type="button"
                      class="secondary"
                      disabled={!mayUpdate || r.state === RouteState.DRAINING}
                      title={mayUpdate ? undefined : `Needs ${roleOf(RouteService.method.updateRoute)}`}
                      onClick={() => edit(r)}
                    >
                      Edit<span class="visually-hidden"> {r.id}</span>
                    </button>
                    <button
                      type="button"
                      class="danger"
                      disabled={!mayDelete || r.state === RouteState.DRAINING}
                      title={mayDelete ? undefined : `Needs ${roleOf(RouteService.method.deleteRoute)}`}
                      onClick={() => setDeleting(r)}
                    >
                      Delete<span class="visually-hidden"> {r.id}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </ScrollRegion>
        {data && data.routes.length === 0 && <p>No routes yet.</p>}
      </section>

      {deleting && (
        <div class="confirm" role="alertdialog" aria-labelledby="confirm-h" aria-describedby="confirm-d">
          <h2 id="confirm-h">Delete route {deleting.id}?</h2>
          <p id="confirm-d">
            {`${String(data?.pending.get(deleting.id) ?? 0)} events wait for this route. Without purge the route drains: its sink delivers them, then the route goes. With purge they are dropped now and never delivered.`}
          </p>
          <label>
            <input type="checkbox" checked={purge} onChange={(e) => setPurge(e.currentTarget.checked)} /> Drop the waiting events (purge)
          </label>
          <div class="actions">
            <button type="button" class="danger" onClick={confirmDelete}>
              Delete
            </button>
            <button type="button" class="secondary" onClick={() => setDeleting(undefined)}>
              Cancel
            </button>
          </div>
        </div>
      )}

      <section aria-labelledby="route-form-h">
        <h2 id="route-form-h">{editing ? `Edit route ${editing.id}` : "Create a route"}</h2>
        {editing && (
          <p class="hint">
            The route's ID and sink stay. A new source applies to events stored after you save; those stored before are still delivered by
            the previous source.
          </p>
        )}
        {conflict && (
          <div class="banner error" role="alert" data-testid="route-conflict">
            {conflict}{" "}
            <button type="button" class="secondary" onClick={reload}>
              Reload route
            </button>
          </div>
        )}
        {!editing && !mayCreate && (
          <p class="hint" data-testid="create-not-allowed">
            Your key lacks the {roleOf(RouteService.method.createRoute)} role: you can look, not create.
          </p>
        )}
        <form onSubmit={submit} class="grid-form" noValidate>
          {errors.get("") && (
            <p class="error" role="alert">
              {errors.get("")}
            </p>
          )}
          <fieldset disabled={!mayWrite}>
            <legend>Route</legend>
            <label for="route-id">ID</label>
            <input id="route-id" value={form.id} onInput={set("id")} readOnly={editing !== undefined} {...described("id")} />
            {err("id")}
            <label for="route-name">Display name</label>
            <input id="route-name" value={form.displayName} onInput={set("displayName")} {...described("displayName")} />
            {err("displayName")}
            <label for="route-disabled">Paused</label>
            <input
              id="route-disabled"
              type="checkbox"
              checked={form.disabled}
              onChange={(e) => setForm({ ...form, disabled: e.currentTarget.checked })}
            />
          </fieldset>
          <fieldset disabled={!mayWrite}>
            <legend>Source filter</legend>
            <label for="route-source-platform">Platform</label>
            <select
              id="route-source-platform"
              value={form.sourcePlatform}
              onChange={set("sourcePlatform")}
              {...described("sourcePlatform")}
            >
              {SOURCES.map((p) => (
                <option key={p} value={p}>
                  {PLATFORM_NAMES[p]}
                </option>
              ))}
            </select>
            {err("sourcePlatform")}
            <label for="route-connection">Connection</label>
            <input
              id="route-connection"
              value={form.connection}
              onInput={set("connection")}
              placeholder="any"
              {...described("connection")}
            />
            {err("connection")}
            <label for="route-device">Device</label>
            <input id="route-device" value={form.device} onInput={set("device")} placeholder="any" {...described("device")} />
            {err("device")}
          </fieldset>
          <fieldset disabled={!mayWrite}>
            <legend>Sink</legend>
            <label for="route-sink-platform">Platform</label>
            <select
              id="route-sink-platform"
              value={form.sinkPlatform}
              onChange={set("sinkPlatform")}
              disabled={editing !== undefined}
              {...described("sinkPlatform")}
            >
              {SINKS.map((p) => (
                <option key={p} value={p}>
                  {PLATFORM_NAMES[p]}
                </option>
              ))}
            </select>
            {err("sinkPlatform")}
            <label for="route-target">Target</label>
            <input
              id="route-target"
              value={form.target}
              onInput={set("target")}
              placeholder="endpoint, application or domain id"
              readOnly={editing !== undefined}
              {...described("target")}
            />
            {err("target")}
            <label for="route-options">Options</label>
            <textarea
              id="route-options"
              rows={3}
              value={form.options}
              onInput={set("options")}
              placeholder="key=value, one a line"
              {...described("options")}
            />
            {err("options")}
          </fieldset>
          <div class="actions">
            <button type="submit" disabled={!mayWrite || busy}>
              {editing ? "Save changes" : "Create route"}
            </button>
            {editing && (
              <button type="button" class="secondary" onClick={stopEditing}>
                Cancel edit
              </button>
            )}
          </div>
        </form>
      </section>
    </div>
  );
}
