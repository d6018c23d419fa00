import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Command } from "@meridian/contracts/meridian/command/v1/command_pb";
import { ConnectionState, IotcBridgeService } from "@meridian/contracts/meridian/iotc/v1/iotc_bridge_service_pb";
import { useEffect, useState } from "preact/hooks";
import { describeError } from "../api.js";
import { ago, time } from "../format.js";
import { useConsole } from "../ui/context.js";
import { ActionButton, DataTable, LacksRole, LoadState } from "../ui/platform-section.js";
import { usePoll } from "../ui/poll.js";
import { ScrollRegion } from "../ui/scroll-region.js";
import { jsonCell } from "./platforms-format.js";

const STATE: Record<ConnectionState, string> = {
  [ConnectionState.UNSPECIFIED]: "unknown",
  [ConnectionState.DISCONNECTED]: "disconnected",
  [ConnectionState.CONNECTING]: "connecting",
  [ConnectionState.CONNECTED]: "connected",
  [ConnectionState.FAILED]: "failed",
};

/** How far back the commands list starts: WatchCommands replays from a start time (the bus keeps 24 h of them). */
const COMMANDS_SINCE_MS = 60 * 60_000;
const DEVICES_PAGE = 100;

/** IoT Central applications as iotc-bridge holds them; one opened shows its devices and its commands. */
export function IotcApplications() {
  const { client } = useConsole();
  const apps = usePoll((signal) => client(IotcBridgeService).listApplications({}, { signal }), 10_000);
  const [open, setOpen] = useState<string | undefined>();
  return (
    <>
      <LoadState load={apps} what="IoT Central applications" service={IotcBridgeService} />
      <DataTable
        label="IoT Central applications"
        testId="iotc-applications"
        columns={["Application", "Name", "ID scope", "Credential", "Device template", "Device names", { label: "Actions", hidden: true }]}
        items={apps.data?.applications}
        empty="No IoT Central applications."
        row={(a) => (
          <tr key={a.id} data-application={a.id}>
            <th scope="row">{a.id}</th>
            <td>{a.displayName}</td>
            <td>{a.idScope}</td>
            <td>{a.credentialKind || "none"}</td>
            <td>{a.modelId || "—"}</td>
            <td>{a.deviceIdTemplate || "{connection}-{device}"}</td>
            <td>
              <ActionButton
                method={IotcBridgeService.method.listDevices}
                class="secondary"
                aria-expanded={open === a.id}
                onClick={() => setOpen(open === a.id ? undefined : a.id)}
              >
                Devices and commands<span class="visually-hidden"> of {a.id}</span>
              </ActionButton>
            </td>
          </tr>
        )}
      />
      {open && <IotcDevices key={`d-${open}`} applicationId={open} />}
      {open && <IotcCommands key={`c-${open}`} applicationId={open} />}
    </>
  );
}

/** The application's devices with their connection to IoT Hub (the first page of 100), and one device's twin. */
function IotcDevices({ applicationId }: { applicationId: string }) {
  const { client } = useConsole();
  const devices = usePoll((signal) => client(IotcBridgeService).listDevices({ applicationId, pageSize: DEVICES_PAGE }, { signal }), 5_000, [
    applicationId,
  ]);
  const [twinOf, setTwinOf] = useState<string | undefined>();
  return (
    <section class="detail" aria-labelledby="iotc-devices-h" data-testid="iotc-devices">
      <h3 id="iotc-devices-h">Devices of {applicationId}</h3>
      <LoadState load={devices} what="devices" />
      <DataTable
        label={`Devices of ${applicationId}`}
        columns={[
          "Device",
          "State",
          "Source",
          "Device template",
          "Hub",
          "Registered",
          "Last activity",
          "Sent",
          "Last error",
          { label: "Actions", hidden: true },
        ]}
        items={devices.data?.devices}
        empty="No devices: they appear once registered, or once a route sends telemetry as them."
        row={(d) => (
          <tr key={d.deviceId} data-device={d.deviceId}>
            <th scope="row">{d.deviceId}</th>
            <td data-testid="device-state" class={d.state === ConnectionState.FAILED ? "error" : undefined}>
              {STATE[d.state]}
            </td>
            <td>{d.source || "—"}</td>
            <td>{d.modelId || "—"}</td>
            <td>{d.assignedHub || "—"}</td>
            <td>{time(d.registeredTime)}</td>
            <td>{ago(d.lastActivityTime)}</td>
            <td class="num">{String(d.messagesSent)}</td>
            <td>{d.lastError}</td>
            <td>
              <ActionButton
                method={IotcBridgeService.method.getDevice}
                class="secondary"
                aria-expanded={twinOf === d.deviceId}
                onClick={() => setTwinOf(twinOf === d.deviceId ? undefined : d.deviceId)}
              >
                Twin<span class="visually-hidden"> of {d.deviceId}</span>
              </ActionButton>
            </td>
          </tr>
        )}
      />
      {devices.data?.nextPageToken && <p class="hint">The first {DEVICES_PAGE} devices are shown.</p>}
      {twinOf && <DeviceTwin key={twinOf} applicationId={applicationId} deviceId={twinOf} />}
    </section>
  );
}

/** One device's twin as IoT Hub returns it (only while the device is connected). */
function DeviceTwin({ applicationId, deviceId }: { applicationId: string; deviceId: string }) {
  const { client } = useConsole();
  const got = usePoll((signal) => client(IotcBridgeService).getDevice({ applicationId, deviceId }, { signal }), 10_000, [
    applicationId,
    deviceId,
  ]);
  const twin = got.data?.twin;
  return (
    <div data-testid="iotc-twin">
      <h4>Twin of {deviceId}</h4>
      <LoadState load={got} what="the device" />
      {got.data && !twin && (
        <p>
          No twin: the device is {STATE[got.data.device?.state ?? ConnectionState.UNSPECIFIED]}, and IoT Hub gives a twin to a connected
          device only.
        </p>
      )}
      {twin && (
        <div class="actions">
          <ScrollRegion label={`Desired properties of ${deviceId}`} class="payload">
            <strong>Desired</strong>
            <pre>{JSON.stringify(twin.desired ?? {}, null, 2)}</pre>
          </ScrollRegion>
          <ScrollRegion label={`Reported properties of ${deviceId}`} class="payload">
            <strong>Reported</strong>
            <pre>{JSON.stringify(twin.reported ?? {}, null, 2)}</pre>
          </ScrollRegion>
        </div>
      )}
    </div>
  );
}

type Answer = { status: number; delivered: boolean } | { error: string };

/**
 * Commands from IoT Central to the application's devices: the last hour's, then live, as WatchCommands gives them
 * (reopened after a failure from the last one seen, without listing one twice). A command that waits for an answer
 * can be answered here (RespondCommand); the API gives commands, not the answers others sent, so the Answer column
 * shows what this page sent.
 */
function IotcCommands({ applicationId }: { applicationId: string }) {
  const { client, onAuthFailure } = useConsole();
  const [device, setDevice] = useState("");
  const [commands, setCommands] = useState<Command[]>([]);
  const [state, setState] = useState("Opening the watch…");
  const [answers, setAnswers] = useState<Map<string, Answer>>(new Map());
  const [answering, setAnswering] = useState<Command | undefined>();

  useEffect(() => {
    setCommands([]);
    const ac = new AbortController();
    const seen = new Set<string>();
    let from = new Date(Date.now() - COMMANDS_SINCE_MS);
    let delay = 500;
    const run = async () => {
      while (!ac.signal.aborted) {
        try {
          setState("Watching: the last hour's commands, then new ones as they come.");
          const stream = client(IotcBridgeService).watchCommands(
            { applicationId, deviceId: device, startTime: timestampFromDate(from) },
            { signal: ac.signal },
          );
          for await (const { command } of stream) {
            delay = 500;
            if (!command || seen.has(command.requestId)) continue;
            seen.add(command.requestId);
            if (command.receivedTime) from = timestampDate(command.receivedTime);
            setCommands((list) => [command, ...list].slice(0, 200));
          }
          if (!ac.signal.aborted) setState("The watch ended; reopening.");
        } catch (err) {
          if (ac.signal.aborted) return;
          const code = ConnectError.from(err).code;
          if (code === Code.Unauthenticated) onAuthFailure(describeError(err));
          if ([Code.Unauthenticated, Code.PermissionDenied, Code.InvalidArgument, Code.NotFound, Code.Unimplemented].includes(code)) {
            setState(describeError(err));
            return;
          }
          setState(`Reopening in ${(delay / 1000).toFixed(1)} s: ${describeError(err)}`);
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 10_000);
      }
    };
    void run();
    return () => ac.abort();
  }, [client, onAuthFailure, applicationId, device]);

  return (
    <section class="detail" aria-labelledby="iotc-commands-h" data-testid="iotc-commands">
      <h3 id="iotc-commands-h">Commands to {applicationId}</h3>
      <div class="filters">
        <label>
          Device (empty: every device)
          <input
            value={device}
            onChange={(e) => setDevice(e.currentTarget.value.trim())}
            placeholder="device id"
            data-testid="commands-device"
          />
        </label>
      </div>
      <p class="hint" role="status" data-testid="commands-state">
        {state} {commands.length} {commands.length === 1 ? "command" : "commands"}.
      </p>
      <LacksRole method={IotcBridgeService.method.respondCommand} doing="answer commands" />
      <DataTable
        label={`Commands to ${applicationId}`}
        columns={["Received", "Device", "Command", "Payload", "Deadline", "Answer", { label: "Actions", hidden: true }]}
        items={commands}
        empty="No commands in the last hour."
        row={(c) => {
          const a = answers.get(c.requestId);
          const name = c.component ? `${c.component}*${c.name}` : c.name;
          return (
            <tr key={c.requestId} data-command={c.requestId}>
              <td>{time(c.receivedTime)}</td>
              <td>{c.target?.device}</td>
              <th scope="row">{name}</th>
              <td>
                <code>{jsonCell(c.payload ? toJson(ValueSchema, c.payload) : null)}</code>
              </td>
              <td>{c.offline ? "queued while offline: no answer expected" : deadlineText(c)}</td>
              <td data-testid="command-answer">
                {a === undefined
                  ? "—"
                  : "error" in a
                    ? a.error
                    : `${a.status}, ${a.delivered ? "delivered" : "not delivered (answered already or too late)"}`}
              </td>
              <td>
                {!c.offline && (
                  <ActionButton
                    method={IotcBridgeService.method.respondCommand}
                    class="secondary"
                    aria-expanded={answering?.requestId === c.requestId}
                    onClick={() => setAnswering(answering?.requestId === c.requestId ? undefined : c)}
                  >
                    Answer
                    <span class="visually-hidden">
                      {" "}
                      {name} to {c.target?.device}
                    </span>
                  </ActionButton>
                )}
              </td>
            </tr>
          );
        }}
      />
      {answering && (
        <AnswerForm
          key={answering.requestId}
          applicationId={applicationId}
          command={answering}
          onAnswered={(answer) => {
            setAnswers((m) => new Map(m).set(answering.requestId, answer));
            setAnswering(undefined);
          }}
        />
      )}
    </section>
  );
}

function deadlineText(c: Command): string {
  if (!c.deadline) return "—";
  return timestampDate(c.deadline).getTime() < Date.now() ? `${time(c.deadline)} (passed)` : time(c.deadline);
}

/** The answer to one command: an HTTP-like status and a JSON payload, sent with RespondCommand. */
function AnswerForm(props: { applicationId: string; command: Command; onAnswered: (a: Answer) => void }) {
  const { client } = useConsole();
  const [status, setStatus] = useState("200");
  const [payload, setPayload] = useState("");
  const [problem, setProblem] = useState<string | undefined>();
  const c = props.command;

  const send = async (e: Event) => {
    e.preventDefault();
    let value: JsonValue = null;
    if (payload.trim()) {
      try {
        value = JSON.parse(payload) as JsonValue;
      } catch (err) {
        setProblem(`The payload is not JSON: ${(err as Error).message}`);
        return;
      }
    }
    try {
      const res = await client(IotcBridgeService).respondCommand({
        applicationId: props.applicationId,
        requestId: c.requestId,
        status: Number(status),
        payload: fromJson(ValueSchema, value),
      });
      props.onAnswered({ status: Number(status), delivered: res.delivered });
    } catch (err) {
      setProblem(describeError(err));
    }
  };

  return (
    <form class="grid-form" onSubmit={send} data-testid="answer-form">
      <fieldset>
        <legend>
          Answer {c.name} to {c.target?.device}
        </legend>
        <label for="answer-status">Status</label>
        <input
          id="answer-status"
          type="number"
          min={200}
          max={599}
          required
          value={status}
          onInput={(e) => setStatus(e.currentTarget.value)}
        />
        <label for="answer-payload">Payload (JSON)</label>
        <textarea id="answer-payload" rows={3} value={payload} onInput={(e) => setPayload(e.currentTarget.value)} placeholder="null" />
      </fieldset>
      {problem && (
        <p class="error" role="alert">
          {problem}
        </p>
      )}
      <div class="actions">
        <ActionButton method={IotcBridgeService.method.respondCommand} type="submit">
          Send answer
        </ActionButton>
      </div>
    </form>
  );
}
