import { Code, ConnectError } from "@connectrpc/connect";
import {
  LifecycleState,
  OciTwinManagerService,
  type Twin,
  TwinDataSet,
  TwinKind,
} from "@meridian/contracts/meridian/oci/v1/oci_twin_manager_service_pb";
import { useState } from "preact/hooks";
import { useConsole } from "../ui/context.js";
import { ActionButton, DataTable, LoadState } from "../ui/platform-section.js";
import { usePoll } from "../ui/poll.js";
import { columnsOf, jsonCell } from "./platforms-format.js";

const KIND: Record<TwinKind, string> = {
  [TwinKind.UNSPECIFIED]: "unknown",
  [TwinKind.UNSTRUCTURED]: "unstructured",
  [TwinKind.DEFAULT_ADAPTER]: "model, default adapter",
  [TwinKind.CUSTOM_ADAPTER]: "model, custom adapter",
};
const LIFECYCLE: Record<LifecycleState, string> = {
  [LifecycleState.UNSPECIFIED]: "unknown",
  [LifecycleState.ACTIVE]: "active",
  [LifecycleState.DELETED]: "deleted",
};
const DATA_SETS = [
  { set: TwinDataSet.HISTORIZED, label: "historized" },
  { set: TwinDataSet.RAW, label: "raw" },
  { set: TwinDataSet.REJECTED, label: "rejected" },
  { set: TwinDataSet.SNAPSHOT, label: "snapshot" },
  { set: TwinDataSet.RAW_COMMAND, label: "raw command" },
] as const;
const MINUTES = [5, 15, 60, 1440] as const;
const ROWS = 50;
/** ORDS row fields read first, so a table reads time, what, value. */
const FIRST_COLUMNS = ["time_observed", "time_received", "content_path", "value", "endpoint", "content", "reason_code", "reason_message"];

const byKey = (key: string) => ({ ref: { case: "key" as const, value: key } });

function sourceText(t: Twin): string {
  const s = t.source;
  const sets = s ? [s.historized && "historized", s.raw && "raw", s.rejected && "rejected"].filter(Boolean) : [];
  return sets.length > 0 ? sets.join(", ") : "no";
}

/** The OCI digital twins oci-twin-manager manages: instance, model and adapter state; one opened shows content and data. */
export function OciTwins() {
  const { client } = useConsole();
  const twins = usePoll((signal) => client(OciTwinManagerService).listTwins({ pageSize: 100 }, { signal }), 10_000);
  const [open, setOpen] = useState<string | undefined>();
  return (
    <>
      <LoadState load={twins} what="OCI twins" service={OciTwinManagerService} />
      <DataTable
        label="OCI digital twins"
        testId="oci-twins"
        columns={[
          "Twin",
          "Display name",
          "Kind",
          "Instance",
          "External key",
          "Model",
          "On the bus",
          "Device secret",
          "Error",
          { label: "Actions", hidden: true },
        ]}
        items={twins.data?.twins}
        empty="No OCI twins."
        row={(t) => (
          <tr key={t.key} data-twin={t.key}>
            <th scope="row">{t.key}</th>
            <td>{t.instance?.displayName}</td>
            <td>{KIND[t.kind]}</td>
            <td>{LIFECYCLE[t.instance?.lifecycleState ?? LifecycleState.UNSPECIFIED]}</td>
            <td>{t.instance?.externalKey}</td>
            <td>{t.model?.specUri || "—"}</td>
            <td>{sourceText(t)}</td>
            <td>{t.deviceSecretSet ? "held" : "not held"}</td>
            <td class={t.error ? "error" : undefined}>{t.error}</td>
            <td>
              <ActionButton
                method={OciTwinManagerService.method.getTwin}
                class="secondary"
                aria-expanded={open === t.key}
                onClick={() => setOpen(open === t.key ? undefined : t.key)}
              >
                Details<span class="visually-hidden"> of {t.key}</span>
              </ActionButton>
            </td>
          </tr>
        )}
      />
      {twins.data?.nextPageToken && <p class="hint">The first 100 twins are shown.</p>}
      {open && <TwinDetail key={open} twinKey={open} />}
    </>
  );
}

/** One twin: its OCI resources, its content (the latest value of each model content), and one data set's recent rows. */
function TwinDetail({ twinKey }: { twinKey: string }) {
  const { client } = useConsole();
  const twin = usePoll((signal) => client(OciTwinManagerService).getTwin({ twin: byKey(twinKey) }, { signal }), 10_000, [twinKey]);
  const content = usePoll(
    async (signal) => {
      try {
        return { content: (await client(OciTwinManagerService).getTwinContent({ twin: byKey(twinKey) }, { signal })).content ?? {} };
      } catch (err) {
        // OCI has no content for an instance without a model: that is an answer, not a failure.
        if (ConnectError.from(err).code === Code.NotFound) return { content: undefined };
        throw err;
      }
    },
    10_000,
    [twinKey],
  );
  const t = twin.data?.twin;
  return (
    <section class="detail" aria-labelledby="oci-twin-h" data-testid="oci-twin">
      <h3 id="oci-twin-h">Twin {twinKey}</h3>
      <LoadState load={twin} what="the twin" />
      {t && (
        <dl>
          <dt>Instance</dt>
          <dd>
            {t.instance?.id} ({LIFECYCLE[t.instance?.lifecycleState ?? LifecycleState.UNSPECIFIED]},{" "}
            {t.instance?.connectivityType || "connectivity unknown"})
          </dd>
          <dt>Adapter</dt>
          <dd>{t.adapter ? `${t.adapter.displayName} (${t.adapter.id})` : "none"}</dd>
          <dt>Model</dt>
          <dd>{t.model ? `${t.model.specUri} (${t.model.id})` : "none"}</dd>
          <dt>IoT domain</dt>
          <dd>{t.iotDomainId}</dd>
        </dl>
      )}
      <h4>Content</h4>
      <LoadState load={content} what="content" />
      {content.data && !content.data.content && <p>No content: OCI has none for this twin (an unstructured twin has no model).</p>}
      <DataTable
        label={`Content of ${twinKey}`}
        testId="twin-content"
        columns={["Content", "Latest value"]}
        items={content.data?.content ? Object.entries(content.data.content) : undefined}
        empty="No content yet: none of the model's contents has a value."
        row={([k, v]) => (
          <tr key={k} data-content={k}>
            <th scope="row">{k}</th>
            <td>{jsonCell(v)}</td>
          </tr>
        )}
      />
      {t && <TwinData twinKey={twinKey} modelled={Boolean(t.model)} />}
    </section>
  );
}

/** One data set of the twin from the ORDS data API, the last minutes, newest first (QueryTwinData). */
function TwinData({ twinKey, modelled }: { twinKey: string; modelled: boolean }) {
  const { client } = useConsole();
  const [dataSet, setDataSet] = useState<TwinDataSet>(modelled ? TwinDataSet.HISTORIZED : TwinDataSet.RAW);
  const [minutes, setMinutes] = useState<number>(60);
  const data = usePoll(
    (signal) =>
      client(OciTwinManagerService).queryTwinData(
        {
          twin: byKey(twinKey),
          dataSet,
          lastMinutes: minutes,
          limit: ROWS,
          includeContent: dataSet === TwinDataSet.RAW || dataSet === TwinDataSet.REJECTED,
        },
        { signal },
      ),
    10_000,
    [twinKey, dataSet, minutes],
  );
  const rows = data.data?.rows;
  const columns = rows ? columnsOf(rows, FIRST_COLUMNS) : [];
  return (
    <div data-testid="twin-data">
      <h4>Recent data</h4>
      <div class="filters">
        <label>
          Data set
          <select value={dataSet} onChange={(e) => setDataSet(Number(e.currentTarget.value) as TwinDataSet)}>
            {DATA_SETS.map((d) => (
              <option key={d.set} value={d.set}>
                {d.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Last
          <select value={minutes} onChange={(e) => setMinutes(Number(e.currentTarget.value))}>
            {MINUTES.map((m) => (
              <option key={m} value={m}>
                {m < 60 ? `${m} minutes` : m === 60 ? "hour" : "24 hours"}
              </option>
            ))}
          </select>
        </label>
      </div>
      <LoadState load={data} what="data" />
      <DataTable
        label={`Recent data of ${twinKey}`}
        columns={columns}
        items={rows}
        empty="No rows in this window."
        row={(r) => (
          <tr key={JSON.stringify(r)}>
            {columns.map((c) => (
              <td key={c}>{jsonCell(r[c])}</td>
            ))}
          </tr>
        )}
      />
      {data.data?.hasMore && <p class="hint">The newest {ROWS} rows are shown.</p>}
    </div>
  );
}
