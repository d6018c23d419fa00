import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { ButtonHTMLAttributes, ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { mayCall, roleOf } from "../roles.js";
import { rolesOf, useConsole } from "./context.js";
import type { Polled } from "./poll.js";
import { ScrollRegion } from "./scroll-region.js";

function NotAvailable({ service }: { service: DescService }) {
  return (
    <p class="hint" data-testid="not-available">
      {service.name} is not available: the gateway does not front it (the service is not deployed here).
    </p>
  );
}

/** The gateway's list of the platform services it fronts, read once per page load; undefined when it cannot be read. */
let fronted: Promise<Set<string> | undefined> | undefined;
function frontedServices(): Promise<Set<string> | undefined> {
  fronted ??= fetch("/console/platforms.json", { headers: { accept: "application/json" } })
    .then(async (res) => (res.ok ? new Set(((await res.json()) as { services: string[] }).services) : undefined))
    .catch(() => undefined);
  return fronted;
}

/**
 * A platform section: its heading, and its body only when the gateway fronts `service` (GET /console/platforms.json).
 * Otherwise the section says the service is not available and makes no call: a call to a service the gateway does not
 * front is a 404, which the browser logs as an error. When the list cannot be read the body is shown and the API
 * answers (an unimplemented answer is worded the same way by LoadState).
 */
export function PlatformSection(props: { id: string; title: string; service: DescService; children: ComponentChildren }) {
  const [known, setKnown] = useState<Set<string> | undefined | "loading">("loading");
  useEffect(() => {
    let live = true;
    void frontedServices().then((set) => live && setKnown(set));
    return () => {
      live = false;
    };
  }, []);
  return (
    <section aria-labelledby={props.id}>
      <h2 id={props.id}>{props.title}</h2>
      {known === "loading" ? (
        <p class="hint">Loading…</p>
      ) : known && !known.has(props.service.typeName) ? (
        <NotAvailable service={props.service} />
      ) : (
        props.children
      )}
    </section>
  );
}

/**
 * Where a section's load stands, said once the same way everywhere: loading, the service not available (the gateway
 * answers unimplemented for a service it does not front: it is not deployed, or its *_URL is unset), or the failure.
 * Nothing once the data is there and the last call succeeded.
 */
export function LoadState(props: { load: Pick<Polled<unknown>, "data" | "error" | "errorCode">; what: string; service?: DescService }) {
  const { load, what, service } = props;
  if (load.errorCode === Code.Unimplemented && service) return <NotAvailable service={service} />;
  if (load.error) {
    return (
      <p class="banner error" role="alert">
        {load.error}
      </p>
    );
  }
  if (load.data === undefined) return <p class="hint">Loading {what}…</p>;
  return null;
}

export type Column = string | { label: string; hidden?: boolean };

/**
 * A list as a table in a scroll region (wide tables scroll on a tablet, by keyboard too): its header from `columns`
 * (a hidden label still names the column for a screen reader), one row per item, and `empty` instead of the table when
 * the list is empty. Nothing while the list is not loaded (LoadState says so).
 */
export function DataTable<T>(props: {
  label: string;
  testId?: string;
  columns: Column[];
  items: readonly T[] | undefined;
  row: (item: T) => ComponentChildren;
  empty: string;
}) {
  if (props.items === undefined) return null;
  if (props.items.length === 0) return <p>{props.empty}</p>;
  return (
    <ScrollRegion label={props.label}>
      <table data-testid={props.testId}>
        <thead>
          <tr>
            {props.columns.map((c) =>
              typeof c === "string" ? (
                <th key={c} scope="col">
                  {c}
                </th>
              ) : (
                <th key={c.label} scope="col">
                  <span class={c.hidden ? "visually-hidden" : undefined}>{c.label}</span>
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>{props.items.map(props.row)}</tbody>
      </table>
    </ScrollRegion>
  );
}

/**
 * A button for one RPC: disabled, with the role named, when the caller's roles do not hold the role the RPC's contract
 * declares (the servers enforce the same option; while roles are unknown the button stays enabled and the API decides).
 */
export function ActionButton(
  props: { method: DescMethod; type?: "button" | "submit" } & Omit<ButtonHTMLAttributes<HTMLButtonElement>, "type">,
) {
  const { method, disabled, title, type = "button", ...rest } = props;
  const { caller } = useConsole();
  const allowed = mayCall(rolesOf(caller), method);
  return <button type={type} {...rest} disabled={!allowed || Boolean(disabled)} title={allowed ? title : `Needs ${roleOf(method)}`} />;
}

/** "Your key lacks <role>: you can look, not <doing>." when the caller may not call `method`; nothing otherwise. */
export function LacksRole(props: { method: DescMethod; doing: string }) {
  const { caller } = useConsole();
  if (mayCall(rolesOf(caller), props.method)) return null;
  return (
    <p class="hint" data-testid="lacks-role">
      Your key lacks {roleOf(props.method)}: you can look, not {props.doing}.
    </p>
  );
}
