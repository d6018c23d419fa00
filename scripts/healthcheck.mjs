// Docker HEALTHCHECK: healthy when the service answers /readyz (or HEALTHCHECK_URL) with 2xx.
const url = process.env.HEALTHCHECK_URL ?? `http://127.0.0.1:${process.env.PORT ?? "8080"}/readyz`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(2500) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
