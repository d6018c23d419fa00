import { create } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { type Datapoint, OmniaReaderService } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { useState } from "preact/hooks";
import { describeError } from "../api.js";
import { ago } from "../format.js";
import { useConsole } from "../ui/context.js";
import { ActionButton, DataTable, LacksRole, LoadState } from "../ui/platform-section.js";
import { usePoll } from "../ui/poll.js";
import { omniaStatus, rfc3339 } from "./platforms-format.js";

const WINDOWS = [
  { label: "10 minutes", ns: 600n * 1_000_000_000n },
  { label: "1 hour", ns: 3_600n * 1_000_000_000n },
  { label: "6 hours", ns: 21_600n * 1_000_000_000n },
  { label: "24 hours", ns: 86_400n * 1_000_000_000n },
] as const;
/** Datapoints asked for per GetData page, and pages followed before the rest of the window is left unread. */
const PAGE = 10_000;
const MAX_PAGES = 10;
const SHOWN = 100;

const nsOf = (t: Timestamp) => t.seconds * 1_000_000_000n + BigInt(t.nanos);
const timestampOfNs = (ns: bigint) => create(TimestampSchema, { seconds: ns / 1_000_000_000n, nanos: Number(ns % 1_000_000_000n) });

/** Omnia readers: what each polls, how far it is, pause and resume; a reader opened shows its series and their data. */
export function OmniaReaders() {
  const { client } = useConsole();
  const data = usePoll(async (signal) => {
    const [readers, prompt] = await Promise.all([
      client(OmniaReaderService).listReaders({}, { signal }),
      // The device-code prompt matters only in that sign-in mode; its failure must not hide the readers.
      client(OmniaReaderService)
        .getAuthPrompt({}, { signal })
        .catch(() => undefined),
    ]);
    return { readers: readers.readers, prompt };
  }, 5_000);
  const [open, setOpen] = useState<string | undefined>();
  const [notice, setNotice] = useState<string | undefined>();

  const pause = async (id: string, paused: boolean) => {
    try {
      await client(OmniaReaderService).pauseReader({ id, paused });
      setNotice(`Reader ${id} ${paused ? "paused" : "resumed"}.`);
    } catch (err) {
      setNotice(`Reader ${id}: ${describeError(err)}`);
    }
    data.refresh();
  };

  const prompt = data.data?.prompt;
  return (
    <>
      <LoadState load={data} what="Omnia readers" service={OmniaReaderService} />
      {prompt?.userCode && (
        <p class="banner" data-testid="omnia-sign-in">
          omnia-reader waits for a sign-in to Omnia: open <a href={prompt.verificationUri}>{prompt.verificationUri}</a> and enter{" "}
          <strong>{prompt.userCode}</strong>.
        </p>
      )}
      <LacksRole method={OmniaReaderService.method.pauseReader} doing="pause or resume readers" />
      <p class="hint" role="status" data-testid="omnia-notice">
        {notice}
      </p>
      <DataTable
        label="Omnia readers"
        testId="omnia-readers"
        columns={[
          "Reader",
          "State",
          "Series",
          "Interval",
          "Lag",
          "Last poll",
          "Published",
          "Last error",
          { label: "Actions", hidden: true },
        ]}
        items={data.data?.readers}
        empty="No Omnia readers."
        row={(r) => {
          const id = r.spec?.id ?? "";
          const paused = r.spec?.paused ?? false;
          return (
            <tr key={id} data-reader={id}>
              <th scope="row">{id}</th>
              <td data-testid="reader-state" class={r.state === "failing" ? "error" : undefined}>
                {r.state}
              </td>
              <td class="num">{r.cursors.length}</td>
              <td class="num">{r.spec?.intervalSeconds ?? 60} s</td>
              <td class="num">{r.spec?.lagSeconds ?? 60} s</td>
              <td>{ago(r.lastPollTime)}</td>
              <td class="num">{String(r.eventsPublished)}</td>
              <td>{r.lastError}</td>
              <td>
                <div class="actions">
                  <ActionButton method={OmniaReaderService.method.pauseReader} class="secondary" onClick={() => pause(id, !paused)}>
                    {paused ? "Resume" : "Pause"}
                    <span class="visually-hidden"> {id}</span>
                  </ActionButton>
                  <ActionButton
                    method={OmniaReaderService.method.getReader}
                    class="secondary"
                    aria-expanded={open === id}
                    onClick={() => setOpen(open === id ? undefined : id)}
                  >
                    Series<span class="visually-hidden"> of {id}</span>
                  </ActionButton>
                </div>
              </td>
            </tr>
          );
        }}
      />
      {open && <ReaderSeries key={open} readerId={open} />}
    </>
  );
}

/** A reader's series with their cursors (everything before a cursor is on the bus); one chosen shows its data. */
function ReaderSeries({ readerId }: { readerId: string }) {
  const { client } = useConsole();
  const reader = usePoll((signal) => client(OmniaReaderService).getReader({ id: readerId }, { signal }), 5_000, [readerId]);
  const [series, setSeries] = useState<{ id: string; name: string } | undefined>();
  return (
    <section class="detail" aria-labelledby="omnia-series-h" data-testid="omnia-series">
      <h3 id="omnia-series-h">Series of {readerId}</h3>
      <LoadState load={reader} what="the reader" />
      <DataTable
        label={`Series of ${readerId}`}
        columns={["Series", "Facility", "ID", "On the bus up to", { label: "Actions", hidden: true }]}
        items={reader.data?.reader?.cursors}
        empty="No series yet: the reader resolves its selectors at its next poll."
        row={(c) => (
          <tr key={c.seriesId} data-series={c.seriesId}>
            <th scope="row">{c.name || c.seriesId}</th>
            <td>{c.facility}</td>
            <td>{c.seriesId}</td>
            <td>{rfc3339(c.cursor)}</td>
            <td>
              <ActionButton
                method={OmniaReaderService.method.getData}
                class="secondary"
                aria-expanded={series?.id === c.seriesId}
                onClick={() => setSeries(series?.id === c.seriesId ? undefined : { id: c.seriesId, name: c.name || c.seriesId })}
              >
                Data<span class="visually-hidden"> of {c.name || c.seriesId}</span>
              </ActionButton>
            </td>
          </tr>
        )}
      />
      {series && <SeriesData key={series.id} seriesId={series.id} name={series.name} />}
    </section>
  );
}

/**
 * A series' recent data as Omnia has it (not as the bus has it): its latest datapoint (GetFirstOrLatest) and the window
 * before it (GetData, page by page up to MAX_PAGES), newest first, the newest SHOWN of them.
 */
function SeriesData({ seriesId, name }: { seriesId: string; name: string }) {
  const { client } = useConsole();
  const [windowIndex, setWindowIndex] = useState(1);
  const span = WINDOWS[windowIndex]!;
  const data = usePoll(
    async (signal) => {
      const api = client(OmniaReaderService);
      const latest = (await api.getFirstOrLatest({ id: seriesId, latest: true }, { signal })).datapoint;
      if (!latest?.time) return { points: [] as Datapoint[], total: 0, cut: false };
      // GetData's end is exclusive and Omnia keeps times to 100 ns: the smallest step past the latest datapoint.
      const end = nsOf(latest.time) + 100n;
      let tail: Datapoint[] = [];
      let total = 0;
      let token = "";
      let pages = 0;
      do {
        const page = await api.getData(
          { id: seriesId, startTime: timestampOfNs(end - span.ns), endTime: timestampOfNs(end), limit: PAGE, continuationToken: token },
          { signal },
        );
        const points = page.data?.datapoints ?? [];
        total += points.length;
        tail = [...tail, ...points].slice(-SHOWN);
        token = page.continuationToken;
        pages++;
      } while (token && pages < MAX_PAGES);
      return { points: tail.reverse(), total, cut: Boolean(token) };
    },
    30_000,
    [seriesId, windowIndex],
  );
  return (
    <div data-testid="omnia-data">
      <h4>Data of {name}</h4>
      <div class="filters">
        <label>
          Window before the latest datapoint
          <select value={windowIndex} onChange={(e) => setWindowIndex(Number(e.currentTarget.value))}>
            {WINDOWS.map((w, i) => (
              <option key={w.label} value={i}>
                {w.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <LoadState load={data} what="datapoints" />
      {data.data && data.data.total > 0 && (
        <p class="hint" data-testid="omnia-data-summary">
          {data.data.cut ? `More than ${data.data.total}` : data.data.total} datapoints in the {span.label} up to the latest; the newest{" "}
          {data.data.points.length} shown, newest first.
        </p>
      )}
      <DataTable
        label={`Data of ${name}`}
        columns={["Time", "Value", "Status"]}
        items={data.data?.points}
        empty="No datapoints."
        row={(p) => (
          <tr key={rfc3339(p.time)} data-time={rfc3339(p.time)}>
            <td>{rfc3339(p.time)}</td>
            <td class="num">{String(p.value)}</td>
            <td>{omniaStatus(p.status)}</td>
          </tr>
        )}
      />
    </div>
  );
}
