import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useRef, useState } from "preact/hooks";
import { describeError } from "../api.js";
import { useConsole } from "./context.js";

export interface Polled<T> {
  data: T | undefined;
  /** The last call's failure, for a person; cleared by the next success (the gateway came back). */
  error: string | undefined;
  /** The last failure's code, for a page that words some failures its own way. */
  errorCode: Code | undefined;
  refresh: () => void;
}

/**
 * Calls `load` now and every `intervalMs` while the page is shown; a failure keeps the last data and is shown, and the
 * next tick tries again, so the page recovers by itself after the gateway restarts.
 */
export function usePoll<T>(load: (signal: AbortSignal) => Promise<T>, intervalMs: number, deps: unknown[] = []): Polled<T> {
  const { onAuthFailure } = useConsole();
  const [data, setData] = useState<T | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [errorCode, setErrorCode] = useState<Code | undefined>();
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const ac = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const value = await loadRef.current(ac.signal);
        if (ac.signal.aborted) return;
        setData(value);
        setError(undefined);
        setErrorCode(undefined);
      } catch (err) {
        if (ac.signal.aborted) return;
        const code = ConnectError.from(err).code;
        if (code === Code.Unauthenticated) onAuthFailure(describeError(err));
        setError(describeError(err));
        setErrorCode(code);
      }
      if (!ac.signal.aborted) timer = setTimeout(run, intervalMs);
    };
    void run();
    return () => {
      ac.abort();
      clearTimeout(timer);
    };
  }, [intervalMs, tick, ...deps]);

  return { data, error, errorCode, refresh: () => setTick((t) => t + 1) };
}
