import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Platform } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { useEffect, useRef, useState } from "preact/hooks";
import { pointNumber, pointValue } from "../format.js";
import { followTelemetry } from "../live-stream.js";
import { useConsole } from "../ui/context.js";
import { LineChart, type Series } from "../ui/line-chart.js";
import { RingBuffer } from "../ui/ring.js";
import { VirtualTable } from "../ui/virtual-table.js";

/** Rows kept for the table (one per point value): older ones fall off. */
const MAX_ROWS = 20_000;
/** Series drawn at most, and values kept per series. */
const MAX_SERIES = 6;
const MAX_POINTS = 2_000;
/** The view is redrawn at most this often, however fast events come. */
const REDRAW_MS = 250;

interface Row {
  key: string;
  time: number;
  platform: string;
  connection: string;
  device: string;
  point: string;
  value: string;
  unit: string;
}

interface Filter {
  platform: Platform;
  connection: string;
  device: string;
  point: string;
  start: string;
}

const PLATFORMS = [
  Platform.UNSPECIFIED,
  Platform.IDIGI,
  Platform.OMNIA,
  Platform.IOT_CENTRAL,
  Platform.OCI_IOT,
  Platform.API,
  Platform.OMF,
];
const platformName = (p: Platform) => (p === Platform.UNSPECIFIED ? "any" : Platform[p]!.toLowerCase().replace("_", " "));

export function TelemetryPage() {
  const { client, onAuthFailure } = useConsole();
  const [draft, setDraft] = useState<Filter>({ platform: Platform.UNSPECIFIED, connection: "", device: "", point: "", start: "" });
  const [filter, setFilter] = useState<Filter | undefined>();
  const [paused, setPaused] = useState(false);
  const [view, setView] = useState<{ rows: Row[]; series: Series[]; count: number }>({ rows: [], series: [], count: 0 });
  const [state, setState] = useState<string>("Not following: choose a filter and press Follow.");
  // Made once (a useRef argument would allocate a 20,000-slot buffer on every render).
  const [rows] = useState(() => new RingBuffer<Row>(MAX_ROWS));
  const series = useRef(new Map<string, RingBuffer<[number, number]>>());
  const count = useRef(0);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;

  useEffect(() => {
    if (!filter) return;
    rows.clear();
    series.current = new Map();
    count.current = 0;
    const ac = new AbortController();
    void followTelemetry({
      client,
      filter: { platform: filter.platform, connection: filter.connection, device: filter.device },
      ...(filter.start ? { start: new Date(filter.start) } : {}),
      signal: ac.signal,
      onState: setState,
      onAuthFailure,
      onEvent: (event) => {
        const t = event.observedTime ? timestampDate(event.observedTime).getTime() : Date.now();
        count.current++;
        for (const p of event.points) {
          if (filter.point && p.name !== filter.point) continue;
          const src = event.source!;
          rows.push({
            key: `${event.id}/${p.name}`,
            time: t,
            platform: platformName(src.platform),
            connection: src.connection,
            device: src.device,
            point: p.name,
            value: pointValue(p),
            unit: p.unit,
          });
          const n = pointNumber(p);
          const name = `${src.device}/${p.name}`;
          if (n !== undefined && (series.current.has(name) || series.current.size < MAX_SERIES)) {
            let s = series.current.get(name);
            if (!s) {
              s = new RingBuffer<[number, number]>(MAX_POINTS);
              series.current.set(name, s);
            }
            s.push([t, n]);
          }
        }
      },
    });
    const redraw = setInterval(() => {
      if (pausedRef.current) return;
      setView({
        rows: rows.toArray(),
        series: [...series.current].map(([name, points]) => ({ name, points: points.toArray() })),
        count: count.current,
      });
    }, REDRAW_MS);
    return () => {
      ac.abort();
      clearInterval(redraw);
    };
  }, [filter, client, onAuthFailure, rows]);

  const set = (k: keyof Filter) => (e: Event) => {
    const el = e.currentTarget as HTMLInputElement | HTMLSelectElement;
    setDraft({ ...draft, [k]: k === "platform" ? Number(el.value) : el.value });
  };

  return (
    <div class="page">
      <form
        class="filters"
        aria-label="Telemetry filter"
        onSubmit={(e) => {
          e.preventDefault();
          setPaused(false);
          setFilter({ ...draft });
        }}
      >
        <label>
          Platform{" "}
          <select value={draft.platform} onChange={set("platform")}>
            {PLATFORMS.map((p) => (
              <option key={p} value={p}>
                {platformName(p)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Connection <input value={draft.connection} onInput={set("connection")} placeholder="any" />
        </label>
        <label>
          Device <input value={draft.device} onInput={set("device")} placeholder="any" />
        </label>
        <label>
          Point <input value={draft.point} onInput={set("point")} placeholder="any" />
        </label>
        <label>
          From <input type="datetime-local" step="1" value={draft.start} onInput={set("start")} />
        </label>
        <button type="submit">Follow</button>
        <button type="button" class="secondary" disabled={!filter} aria-pressed={paused} onClick={() => setPaused(!paused)}>
          {paused ? "Resume" : "Pause"}
        </button>
      </form>
      <p role="status" class="hint" data-testid="stream-state" data-events={view.count}>
        {paused ? "Paused: the stream is still read; the view resumes where it is." : state} {view.count} events.
      </p>
      <LineChart series={view.series} />
      <VirtualTable
        label="Live telemetry values"
        columns={["Observed", "Platform", "Connection", "Device", "Point", "Value", "Unit"]}
        rows={view.rows}
        follow={!paused}
        row={(r) => (
          <tr key={r.key} data-point={r.point}>
            <td>{new Date(r.time).toLocaleTimeString()}</td>
            <td>{r.platform}</td>
            <td>{r.connection}</td>
            <td>{r.device}</td>
            <td>{r.point}</td>
            <td class="num">{r.value}</td>
            <td>{r.unit}</td>
          </tr>
        )}
      />
    </div>
  );
}
