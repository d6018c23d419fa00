import { type Duration, timestampDate } from "@bufbuild/protobuf/wkt";
import { type Endpoint, OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import { type GetStatusResponse, Health, StatusService } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import { useRef } from "preact/hooks";
import { ago, bytes, duration, fill, rate } from "../format.js";
import { useConsole } from "../ui/context.js";
import { usePoll } from "../ui/poll.js";
import { ScrollRegion } from "../ui/scroll-region.js";
import { Sparkline } from "../ui/sparkline.js";

const POLL_MS = 2000;
/** Rate history kept per pipeline: two minutes at one reading per poll. */
const HISTORY = 60;
/** Backlog older than this is called out, as the services' own backlog_age warning does by default. */
const OLD_LAG_SECONDS = 300;

interface Reading {
  at: number;
  received: bigint;
  delivered: bigint;
  rateIn: number[];
  rateOut: number[];
}

const HEALTH_TEXT: Record<Health, string> = {
  [Health.UNSPECIFIED]: "unknown",
  [Health.SERVING]: "serving",
  [Health.NOT_SERVING]: "not serving",
  [Health.STALE]: "stale (no report)",
};

const lagSeconds = (d: Duration | undefined) => (d ? Number(d.seconds) + d.nanos / 1e9 : 0);

export function OverviewPage() {
  const { client } = useConsole();
  const readings = useRef(new Map<string, Reading>());
  const deadLetterCounts = useRef<number[]>([]);
  const status = usePoll<{ res: GetStatusResponse; insecure: Endpoint[] }>(async (signal) => {
    const [res, endpoints] = await Promise.all([
      client(StatusService).getStatus({}, { signal }),
      // Without omf-sender behind the gateway, or without platform:read, there is simply no endpoint to warn about.
      client(OmfSenderService)
        .listEndpoints({}, { signal })
        .catch(() => undefined),
    ]);
    const now = Date.now();
    for (const s of res.services) {
      for (const p of s.pipelines) {
        const key = `${s.service}/${s.instance}/${p.name}`;
        const before = readings.current.get(key);
        const seconds = before ? (now - before.at) / 1000 : 0;
        const r: Reading = {
          at: now,
          received: p.received,
          delivered: p.delivered,
          rateIn: [...(before?.rateIn ?? []), rate(before?.received, p.received, seconds)].slice(-HISTORY),
          rateOut: [...(before?.rateOut ?? []), rate(before?.delivered, p.delivered, seconds)].slice(-HISTORY),
        };
        readings.current.set(key, r);
      }
    }
    const dlq = res.streams.find((s) => s.name === "DEADLETTER");
    if (dlq) deadLetterCounts.current = [...deadLetterCounts.current, Number(dlq.messages)].slice(-HISTORY);
    return { res, insecure: endpoints?.endpoints.filter((e) => e.insecureSettings.length > 0) ?? [] };
  }, POLL_MS);

  const res = status.data?.res;
  const warnings: Array<{ key: string; text: string }> = [];
  for (const s of res?.services ?? []) {
    for (const w of s.warnings) warnings.push({ key: `${s.service}-${w.kind}-${w.subject}`, text: `${s.service}: ${w.message}` });
    for (const p of s.pipelines) {
      if (lagSeconds(p.lag) > OLD_LAG_SECONDS)
        warnings.push({ key: `lag-${p.name}`, text: `${s.service}: ${p.name} is ${duration(p.lag)} behind (old backlog)` });
    }
    if (s.health !== Health.SERVING)
      warnings.push({ key: `health-${s.service}-${s.instance}`, text: `${s.service} ${s.instance} is ${HEALTH_TEXT[s.health]}` });
  }
  for (const e of status.data?.insecure ?? []) {
    warnings.push({ key: `insecure-${e.id}`, text: `OMF endpoint ${e.id} uses insecure settings: ${e.insecureSettings.join(", ")}` });
  }
  const dl = deadLetterCounts.current;
  if (dl.length > 1 && dl.at(-1)! > dl[0]!) {
    warnings.push({
      key: "dlq-growing",
      text: `Dead letters growing: ${dl[0]} → ${dl.at(-1)} in the last ${Math.round((dl.length * POLL_MS) / 1000)} s`,
    });
  }

  return (
    <div class="page">
      {status.error && (
        <p class="banner error" role="alert">
          {status.error}
        </p>
      )}
      {!res && !status.error && <p aria-live="polite">Loading…</p>}
      {res && (
        <>
          <section aria-labelledby="warnings-h">
            <h2 id="warnings-h">Warnings</h2>
            {warnings.length === 0 ? (
              <p class="ok" data-testid="no-warnings">
                Nothing to look at.
              </p>
            ) : (
              <ul class="warnings">
                {warnings.map((w) => (
                  <li key={w.key}>{w.text}</li>
                ))}
              </ul>
            )}
          </section>
          <section aria-labelledby="services-h">
            <h2 id="services-h">Services</h2>
            <ScrollRegion label="Services">
              <table data-testid="services">
                <thead>
                  <tr>
                    <th scope="col">Service</th>
                    <th scope="col">Instance</th>
                    <th scope="col">Version</th>
                    <th scope="col">Health</th>
                    <th scope="col">Reported</th>
                  </tr>
                </thead>
                <tbody>
                  {res.services.map((s) => (
                    <tr key={`${s.service}/${s.instance}`} data-service={s.service}>
                      <th scope="row">{s.service}</th>
                      <td>{s.instance}</td>
                      <td>{s.version}</td>
                      <td>
                        <span class={`health h${s.health}`}>{HEALTH_TEXT[s.health]}</span>
                      </td>
                      <td>{ago(s.reportTime)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </ScrollRegion>
          </section>
          <section aria-labelledby="pipelines-h">
            <h2 id="pipelines-h">Pipelines</h2>
            <ScrollRegion label="Pipelines">
              <table data-testid="pipelines">
                <thead>
                  <tr>
                    <th scope="col">Service</th>
                    <th scope="col">Pipeline</th>
                    <th scope="col">In /s</th>
                    <th scope="col">Out /s</th>
                    <th scope="col">Out, last 2 min</th>
                    <th scope="col">Pending</th>
                    <th scope="col">Lag</th>
                    <th scope="col">Failed</th>
                    <th scope="col">Last error</th>
                  </tr>
                </thead>
                <tbody>
                  {res.services.flatMap((s) =>
                    s.pipelines.map((p) => {
                      const r = readings.current.get(`${s.service}/${s.instance}/${p.name}`);
                      return (
                        <tr key={`${s.service}/${s.instance}/${p.name}`} data-pipeline={p.name}>
                          <td>{s.service}</td>
                          <th scope="row">{p.name}</th>
                          <td class="num">{(r?.rateIn.at(-1) ?? 0).toFixed(1)}</td>
                          <td class="num">{(r?.rateOut.at(-1) ?? 0).toFixed(1)}</td>
                          <td>
                            <Sparkline values={r?.rateOut ?? []} label={`${p.name} delivered per second over the last two minutes`} />
                          </td>
                          <td class="num">{String(p.pending)}</td>
                          <td class="num">{duration(p.lag)}</td>
                          <td class="num">{String(p.failed)}</td>
                          <td>
                            {p.lastError
                              ? `${p.lastError} (${p.lastErrorTime ? timestampDate(p.lastErrorTime).toLocaleTimeString() : ""})`
                              : ""}
                          </td>
                        </tr>
                      );
                    }),
                  )}
                </tbody>
              </table>
            </ScrollRegion>
          </section>
          <section aria-labelledby="streams-h">
            <h2 id="streams-h">Streams</h2>
            <ScrollRegion label="Streams">
              <table data-testid="streams">
                <thead>
                  <tr>
                    <th scope="col">Stream</th>
                    <th scope="col">Messages</th>
                    <th scope="col">Size</th>
                    <th scope="col">Size limit</th>
                    <th scope="col">Age limit</th>
                    <th scope="col">No longer held</th>
                    <th scope="col">Newest</th>
                  </tr>
                </thead>
                <tbody>
                  {res.streams.map((s) => (
                    <tr key={s.name} data-stream={s.name}>
                      <th scope="row">{s.name}</th>
                      <td class="num">{String(s.messages)}</td>
                      <td class="num">{bytes(s.bytes)}</td>
                      <td class="num">{fill(s.bytes, s.maxBytes)}</td>
                      <td class="num">{s.maxAge ? duration(s.maxAge) : "no limit"}</td>
                      {/* Discarded by the limits or deleted; whether a sink had not read them is a warning above. */}
                      <td class="num" data-testid="stream-removed">
                        {String(s.removed)}
                      </td>
                      <td>{ago(s.lastTime)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </ScrollRegion>
          </section>
        </>
      )}
    </div>
  );
}
