// Container healthcheck (Docker HEALTHCHECK, Kubernetes exec probe): healthy when the service answers /readyz (or the
// path given as argument, or HEALTHCHECK_URL) with 2xx. With TLS on the API port (TLS_CERT_FILE set) it asks
// https://; when the port verifies client certificates (TLS_CLIENT_CA_FILE set) it presents HEALTHCHECK_CERT_FILE /
// HEALTHCHECK_KEY_FILE, by default the service's own certificate, which must then chain to that CA and allow client
// authentication.
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";

const env = process.env;
const tlsOn = Boolean(env.TLS_CERT_FILE);
// `node healthcheck.mjs /healthz` asks another path (a liveness probe); HEALTHCHECK_URL (emulators) wins.
const path = process.argv[2] ?? "/readyz";
const url = new URL(env.HEALTHCHECK_URL ?? `${tlsOn ? "https" : "http"}://127.0.0.1:${env.PORT ?? "8080"}${path}`);

function tlsOptions() {
  // The probe reaches its own process over loopback and learns only a status code: who answers is not in doubt, and
  // the certificate names the service's DNS names, not 127.0.0.1. So the server certificate is not verified here;
  // clients elsewhere verify it.
  const options = { rejectUnauthorized: false };
  const certFile = env.HEALTHCHECK_CERT_FILE ?? (env.TLS_CLIENT_CA_FILE ? env.TLS_CERT_FILE : undefined);
  const keyFile = env.HEALTHCHECK_KEY_FILE ?? (env.TLS_CLIENT_CA_FILE ? env.TLS_KEY_FILE : undefined);
  if (certFile && keyFile) Object.assign(options, { cert: readFileSync(certFile), key: readFileSync(keyFile) });
  return options;
}

try {
  const secure = url.protocol === "https:";
  const status = await new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(
      url,
      { method: "GET", agent: false, timeout: 2500, ...(secure ? tlsOptions() : {}) },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
  process.exit(status >= 200 && status < 300 ? 0 : 1);
} catch {
  process.exit(1);
}
