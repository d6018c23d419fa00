import { toJsonString } from "@bufbuild/protobuf";
import {
  DeadLetterService,
  type GetDeadLetterResponse,
  ReplayOutcome,
  ReplayState,
} from "@meridian/contracts/meridian/deadletter/v1/dead_letter_service_pb";
import { TelemetryBatchSchema } from "@meridian/contracts/meridian/telemetry/v1/telemetry_pb";
import { useState } from "preact/hooks";
import { describeError } from "../api.js";
import { bytes, time } from "../format.js";
import { mayCall, roleOf } from "../roles.js";
import { rolesOf, useConsole } from "../ui/context.js";
import { usePoll } from "../ui/poll.js";
import { ScrollRegion } from "../ui/scroll-region.js";

const OUTCOME: Record<ReplayOutcome, string> = {
  [ReplayOutcome.UNSPECIFIED]: "unknown",
  [ReplayOutcome.REPLAYED]: "replayed",
  [ReplayOutcome.ALREADY_REPLAYED]: "already replayed",
  [ReplayOutcome.NOT_FOUND]: "not found",
  [ReplayOutcome.REFUSED]: "refused",
};

/** The original payload for a person: the decoded batch as proto JSON, else the bytes as text. */
function payloadText(d: GetDeadLetterResponse): string {
  if (d.batch) return toJsonString(TelemetryBatchSchema, d.batch, { prettySpaces: 2 });
  return new TextDecoder().decode(d.payload);
}

export function DeadLettersPage() {
  const { client, caller } = useConsole();
  const roles = rolesOf(caller);
  const mayAdmin = mayCall(roles, DeadLetterService.method.replayDeadLetters);
  const [routeId, setRouteId] = useState("");
  const [reason, setReason] = useState("");
  const [state, setState] = useState<ReplayState>(ReplayState.UNSPECIFIED);
  const [selected, setSelected] = useState<Set<bigint>>(new Set());
  const [open, setOpen] = useState<GetDeadLetterResponse | undefined>();
  const [notice, setNotice] = useState<string | undefined>();

  const list = usePoll(
    (signal) =>
      client(DeadLetterService).listDeadLetters({ filter: { routeId, reasonContains: reason, state }, pageSize: 200 }, { signal }),
    5000,
    [routeId, reason, state],
  );

  const show = async (sequence: bigint) => {
    try {
      setOpen(await client(DeadLetterService).getDeadLetter({ sequence }));
    } catch (err) {
      setNotice(describeError(err));
    }
  };
  const replay = async (sequences: bigint[]) => {
    try {
      const res = await client(DeadLetterService).replayDeadLetters({ sequences });
      setNotice(res.results.map((r) => `${r.sequence}: ${OUTCOME[r.outcome]}${r.message ? ` (${r.message})` : ""}`).join("; "));
      setSelected(new Set());
      list.refresh();
      if (open) await show(open.deadLetter!.sequence);
    } catch (err) {
      setNotice(describeError(err));
    }
  };
  const purge = async (sequences: bigint[]) => {
    try {
      const res = await client(DeadLetterService).purgeDeadLetters({ sequences });
      setNotice(`${res.purged} dead letters purged.`);
      setSelected(new Set());
      if (open && sequences.includes(open.deadLetter!.sequence)) setOpen(undefined);
      list.refresh();
    } catch (err) {
      setNotice(describeError(err));
    }
  };
  const letters = list.data?.deadLetters ?? [];
  const picked = [...selected];
  const needs = roleOf(DeadLetterService.method.replayDeadLetters);

  return (
    <div class="page">
      {list.error && (
        <p class="banner error" role="alert">
          {list.error}
        </p>
      )}
      {notice && (
        <p class="banner" role="status" data-testid="dlq-notice">
          {notice}
        </p>
      )}
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter dead letters">
        <label>
          Route <input value={routeId} onChange={(e) => setRouteId(e.currentTarget.value.trim())} />
        </label>
        <label>
          Reason contains <input value={reason} onChange={(e) => setReason(e.currentTarget.value)} />
        </label>
        <label>
          State{" "}
          <select value={state} onChange={(e) => setState(Number(e.currentTarget.value))}>
            <option value={ReplayState.UNSPECIFIED}>any</option>
            <option value={ReplayState.PENDING}>pending</option>
            <option value={ReplayState.REPLAYED}>replayed</option>
          </select>
        </label>
      </form>
      <div class="actions">
        <button
          type="button"
          disabled={!mayAdmin || picked.length === 0}
          onClick={() => replay(picked)}
          title={mayAdmin ? undefined : `Needs ${needs}`}
        >
          Replay selected
        </button>
        <button
          type="button"
          class="danger"
          disabled={!mayAdmin || picked.length === 0}
          onClick={() => purge(picked)}
          title={mayAdmin ? undefined : `Needs ${needs}`}
        >
          Purge selected
        </button>
        {!mayAdmin && <span class="hint">Your key lacks {needs}: you can look, not replay or purge.</span>}
      </div>
      <ScrollRegion label="Dead letters list">
        <table data-testid="dead-letters">
          <thead>
            <tr>
              <th scope="col">
                <span class="visually-hidden">Select</span>
              </th>
              <th scope="col">Seq</th>
              <th scope="col">Time</th>
              <th scope="col">Consumer</th>
              <th scope="col">Route</th>
              <th scope="col">Reason</th>
              <th scope="col">Deliveries</th>
              <th scope="col">Size</th>
              <th scope="col">State</th>
            </tr>
          </thead>
          <tbody>
            {letters.map((d) => (
              <tr key={String(d.sequence)} data-sequence={String(d.sequence)} data-route={d.routeId}>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`Select dead letter ${d.sequence}`}
                    checked={selected.has(d.sequence)}
                    onChange={(e) => {
                      const next = new Set(selected);
                      if (e.currentTarget.checked) next.add(d.sequence);
                      else next.delete(d.sequence);
                      setSelected(next);
                    }}
                  />
                </td>
                <td>
                  <button type="button" class="link" onClick={() => show(d.sequence)}>
                    {String(d.sequence)}
                  </button>
                </td>
                <td>{time(d.time)}</td>
                <td>{d.consumer}</td>
                <td>{d.routeId}</td>
                <td>{d.reason}</td>
                <td class="num">{d.deliveries}</td>
                <td class="num">{bytes(d.sizeBytes)}</td>
                <td>{d.replay ? "replayed" : "pending"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </ScrollRegion>
      {list.data && letters.length === 0 && <p>No dead letters match.</p>}

      {open?.deadLetter && (
        <section class="detail" aria-labelledby="detail-h" data-testid="dead-letter-detail">
          <h2 id="detail-h">Dead letter {String(open.deadLetter.sequence)}</h2>
          <dl>
            <dt>Reason</dt>
            <dd>{open.deadLetter.reason}</dd>
            <dt>Detail</dt>
            <dd>{open.deadLetter.detail || "—"}</dd>
            <dt>Consumer</dt>
            <dd>{open.deadLetter.consumer}</dd>
            <dt>Original subject</dt>
            <dd>{open.deadLetter.originalSubject}</dd>
            <dt>Deliveries</dt>
            <dd>{open.deadLetter.deliveries}</dd>
            <dt>Replay</dt>
            <dd>
              {open.deadLetter.replay
                ? `replayed ${time(open.deadLetter.replay.time)} by ${open.deadLetter.replay.caller}`
                : "not replayed"}
            </dd>
          </dl>
          <h3>Payload</h3>
          <ScrollRegion label="Original payload" class="payload">
            <pre>{payloadText(open)}</pre>
          </ScrollRegion>
          <div class="actions">
            <button type="button" disabled={!mayAdmin} onClick={() => replay([open.deadLetter!.sequence])}>
              Replay
            </button>
            <button type="button" class="danger" disabled={!mayAdmin} onClick={() => purge([open.deadLetter!.sequence])}>
              Purge
            </button>
            <button type="button" class="secondary" onClick={() => setOpen(undefined)}>
              Close
            </button>
          </div>
        </section>
      )}
    </div>
  );
}
