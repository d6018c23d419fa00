import { IdigiListenerService, SessionState } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { IotcBridgeService } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { OciTwinManagerService } from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import {
  type CheckEndpointResponse,
  EndpointKind,
  OmfSenderService,
  type ReadValuesResponse,
} from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { OmniaReaderService } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { useState } from "preact/hooks";
import { describeError } from "../api.js";
import { ago } from "../format.js";
import { useConsole } from "../ui/context.js";
import { ActionButton, DataTable, LoadState, PlatformSection } from "../ui/platform-section.js";
import { usePoll } from "../ui/poll.js";
import { IotcApplications } from "./platforms-iotc.js";
import { OciTwins } from "./platforms-oci.js";
import { OmniaReaders } from "./platforms-omnia.js";

const KIND: Record<EndpointKind, string> = {
  [EndpointKind.UNSPECIFIED]: "unknown",
  [EndpointKind.PI]: "PI Web API",
  [EndpointKind.ADH]: "Data Hub",
  [EndpointKind.EDS]: "Edge Data Store",
};

/**
 * The platforms behind the gateway, as far as the console knows them: OMF endpoints (check, and read a point's values
 * back from the endpoint itself), iDigi monitors and their push sessions, IoT Central applications with their devices
 * and commands, Omnia readers with their series' data, OCI twins with their content and data. A platform service the
 * gateway does not front answers unimplemented: its section says it is not available.
 */
export function PlatformsPage() {
  return (
    <div class="page">
      <PlatformSection id="omf-h" title="OMF endpoints (omf-sender)" service={OmfSenderService}>
        <OmfEndpoints />
      </PlatformSection>
      <PlatformSection id="idigi-h" title="iDigi monitors (idigi-listener)" service={IdigiListenerService}>
        <IdigiMonitors />
      </PlatformSection>
      <PlatformSection id="iotc-h" title="IoT Central applications (iotc-bridge)" service={IotcBridgeService}>
        <IotcApplications />
      </PlatformSection>
      <PlatformSection id="omnia-h" title="Omnia readers (omnia-reader)" service={OmniaReaderService}>
        <OmniaReaders />
      </PlatformSection>
      <PlatformSection id="oci-h" title="OCI digital twins (oci-twin-manager)" service={OciTwinManagerService}>
        <OciTwins />
      </PlatformSection>
    </div>
  );
}

function OmfEndpoints() {
  const { client } = useConsole();
  const endpoints = usePoll((signal) => client(OmfSenderService).listEndpoints({}, { signal }), 10_000);
  const [checks, setChecks] = useState<Map<string, CheckEndpointResponse | string>>(new Map());
  const [open, setOpen] = useState<string | undefined>();

  const check = async (id: string) => {
    let result: CheckEndpointResponse | string;
    try {
      result = await client(OmfSenderService).checkEndpoint({ id });
    } catch (err) {
      result = describeError(err);
    }
    setChecks((m) => new Map(m).set(id, result));
  };

  return (
    <>
      <LoadState load={endpoints} what="OMF endpoints" service={OmfSenderService} />
      <DataTable
        label="OMF endpoints"
        testId="omf-endpoints"
        columns={["ID", "Kind", "URL", "Insecure settings", "Check", { label: "Actions", hidden: true }]}
        items={endpoints.data?.endpoints}
        empty="No OMF endpoints."
        row={(e) => {
          const c = checks.get(e.id);
          return (
            <tr key={e.id} data-endpoint={e.id}>
              <th scope="row">{e.id}</th>
              <td>{KIND[e.kind]}</td>
              <td>{e.url}</td>
              <td class={e.insecureSettings.length > 0 ? "error" : undefined}>{e.insecureSettings.join(", ") || "none"}</td>
              <td data-testid="check-result">
                {c === undefined
                  ? ""
                  : typeof c === "string"
                    ? c
                    : `${c.reachable ? "reachable" : "unreachable"}, ${c.authenticated ? "authenticated" : "not authenticated"}${c.httpStatus ? `, HTTP ${c.httpStatus}` : ""}, ${c.latencyMs} ms${c.error ? `: ${c.error}` : ""}`}
              </td>
              <td>
                <div class="actions">
                  <ActionButton method={OmfSenderService.method.checkEndpoint} class="secondary" onClick={() => check(e.id)}>
                    Check<span class="visually-hidden"> {e.id}</span>
                  </ActionButton>
                  <ActionButton
                    method={OmfSenderService.method.listPoints}
                    class="secondary"
                    aria-expanded={open === e.id}
                    onClick={() => setOpen(open === e.id ? undefined : e.id)}
                  >
                    Points<span class="visually-hidden"> of {e.id}</span>
                  </ActionButton>
                </div>
              </td>
            </tr>
          );
        }}
      />
      {open && <EndpointPoints endpointId={open} />}
    </>
  );
}

/** The endpoint's points (as the endpoint lists them) and the recorded values of the one chosen, read back from it. */
function EndpointPoints({ endpointId }: { endpointId: string }) {
  const { client } = useConsole();
  const [filter, setFilter] = useState("");
  const points = usePoll(
    (signal) => client(OmfSenderService).listPoints({ endpointId, nameFilter: filter, pageSize: 100 }, { signal }),
    15_000,
    [endpointId, filter],
  );
  const [values, setValues] = useState<{ point: string; res?: ReadValuesResponse; error?: string } | undefined>();

  const read = async (point: string) => {
    try {
      const res = await client(OmfSenderService).readValues({ endpointId, point, maxCount: 50 });
      setValues({ point, res });
    } catch (err) {
      setValues({ point, error: describeError(err) });
    }
  };

  return (
    <section class="detail" aria-labelledby="points-h" data-testid="endpoint-points">
      <h3 id="points-h">Points of {endpointId}</h3>
      <label>
        Name filter <input value={filter} onChange={(e) => setFilter(e.currentTarget.value.trim())} />
      </label>
      <LoadState load={points} what="points" />
      {points.data && points.data.points.length === 0 && <p>No points.</p>}
      <ul class="points">
        {points.data?.points.map((p) => (
          <li key={p.id || p.name}>
            <button type="button" class="link" onClick={() => read(p.name)}>
              {p.name}
            </button>{" "}
            <span class="hint">{p.type}</span>
          </li>
        ))}
      </ul>
      {values && (
        <div data-testid="point-values">
          <h4>Values of {values.point}</h4>
          {values.error && (
            <p class="banner error" role="alert">
              {values.error}
            </p>
          )}
          {values.res?.noData && <p>No data.</p>}
          <DataTable
            label={`Values of ${values.point}`}
            columns={["Time", "Value"]}
            items={values.res?.noData ? undefined : values.res?.values}
            empty="No values."
            row={(v) => (
              <tr key={v.timestamp}>
                <td>{v.timestamp}</td>
                <td class="num">{v.valueJson}</td>
              </tr>
            )}
          />
        </div>
      )}
    </section>
  );
}

const SESSION: Record<SessionState, string> = {
  [SessionState.UNSPECIFIED]: "unknown",
  [SessionState.CONNECTING]: "connecting",
  [SessionState.CONNECTED]: "connected",
  [SessionState.DISCONNECTED]: "disconnected",
  [SessionState.FAILED]: "failed",
  [SessionState.NOT_RUNNING]: "not running",
};

/** iDigi push monitors at the platform and the listener's session on each: state, counters, last error. */
function IdigiMonitors() {
  const { client } = useConsole();
  const data = usePoll(async (signal) => {
    const [monitors, sessions] = await Promise.all([
      client(IdigiListenerService).listMonitors({}, { signal }),
      client(IdigiListenerService).listSessions({}, { signal }),
    ]);
    return { monitors: monitors.monitors, sessions: new Map(sessions.sessions.map((s) => [s.monitorId, s])) };
  }, 5_000);
  return (
    <>
      <LoadState load={data} what="iDigi monitors" service={IdigiListenerService} />
      <DataTable
        label="iDigi monitors"
        testId="idigi-monitors"
        columns={["Monitor", "Topics", "Status at iDigi", "Session", "Since", "Received", "Delivered", "Last error"]}
        items={data.data?.monitors}
        empty="No monitors."
        row={(m) => {
          const s = data.data?.sessions.get(m.id);
          return (
            <tr key={m.id} data-monitor={m.id}>
              <th scope="row">{m.id}</th>
              <td>{m.topics.join(", ")}</td>
              <td>{m.status}</td>
              <td>{s ? SESSION[s.state] : "none"}</td>
              <td>{ago(s?.stateTime)}</td>
              <td class="num">{String(s?.receivedEvents ?? "—")}</td>
              <td class="num">{String(s?.deliveredEvents ?? "—")}</td>
              <td>{s?.lastError}</td>
            </tr>
          );
        }}
      />
    </>
  );
}
