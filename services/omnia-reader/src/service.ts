import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { OmniaReaderService } from "@meridian/contracts/meridian/omnia/v1/omnia_reader_service_pb";
import { type PipelineCounters, PipelineCountersSchema } from "@meridian/contracts/meridian/status/v1/status_service_pb";
import type { BackoffPolicy } from "@meridian/retry";
import { ConfigError, type Logger, serviceIdentity } from "@meridian/service-kit";
import { type BusService, type BusServiceOptions, startBusService } from "@meridian/service-kit/bus";
import { omniaReaderErrors, omniaReaderService } from "./api/index.js";
import type { OmniaReaderConfig } from "./config.js";
import { applyReaders, readReadersFile } from "./declared.js";
import { ReaderManager } from "./pipeline/manager.js";
import type { AuthPrompt, OmniaApi } from "./pipeline/omnia-api.js";
import { SinkManager } from "./pipeline/route-sink.js";
import { type OmniaAuthConfig, OmniaClient, OmniaConfigError } from "./platform/index.js";

const SERVICE = serviceIdentity("omnia-reader", import.meta.url);

export interface OmniaReader extends BusService {
  readers: ReaderManager;
  sinks: SinkManager;
  api: OmniaApi;
}

export interface OmniaReaderOptions extends BusServiceOptions {
  /** The Omnia client to use instead of one made from the settings (tests). */
  api?: OmniaApi;
  /** Backoff of Omnia reads inside one poll (tests shorten it). */
  readBackoff?: BackoffPolicy;
  readAttempts?: number;
  /** Redelivery backoff of routes into Omnia (tests shorten it); default the bus's REDELIVERY_BACKOFF. */
  redeliveryBackoff?: BackoffPolicy;
}

function authFrom(config: OmniaReaderConfig): OmniaAuthConfig {
  const tenant = config.AZURE_TENANT_ID ? { tenantId: config.AZURE_TENANT_ID } : {};
  switch (config.OMNIA_AUTH_MODE) {
    case "client-secret":
      if (!config.AZURE_CLIENT_ID || !config.AZURE_CLIENT_SECRET)
        throw new ConfigError("OMNIA_AUTH_MODE=client-secret needs AZURE_CLIENT_ID and AZURE_CLIENT_SECRET", [
          "AZURE_CLIENT_ID",
          "AZURE_CLIENT_SECRET",
        ]);
      return { mode: "clientSecret", ...tenant, clientId: config.AZURE_CLIENT_ID, clientSecret: config.AZURE_CLIENT_SECRET };
    case "device-code":
      return { mode: "deviceCode", ...tenant, ...(config.AZURE_CLIENT_ID ? { clientId: config.AZURE_CLIENT_ID } : {}) };
    case "managed-identity":
      return { mode: "managedIdentity", ...(config.AZURE_CLIENT_ID ? { clientId: config.AZURE_CLIENT_ID } : {}) };
    case "workload-identity":
      return {
        mode: "workloadIdentity",
        ...tenant,
        ...(config.AZURE_CLIENT_ID ? { clientId: config.AZURE_CLIENT_ID } : {}),
        ...(config.AZURE_FEDERATED_TOKEN_FILE ? { tokenFilePath: config.AZURE_FEDERATED_TOKEN_FILE } : {}),
      };
  }
}

function readPem(setting: "OMNIA_CA_FILE" | "AZURE_AUTHORITY_CA_FILE", path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${setting}: cannot read ${path}: ${(err as Error).message}`, [setting]);
  }
}

/** The Omnia client from the settings; its complaints name the settings. */
function clientFrom(config: OmniaReaderConfig, logger: Logger, prompt: (p: AuthPrompt) => void): OmniaApi {
  const caPem = readPem("OMNIA_CA_FILE", config.OMNIA_CA_FILE);
  const authorityCaPem = readPem("AZURE_AUTHORITY_CA_FILE", config.AZURE_AUTHORITY_CA_FILE);
  try {
    return new OmniaClient({
      environment: config.OMNIA_ENVIRONMENT,
      ...(config.OMNIA_URL ? { baseUrl: config.OMNIA_URL } : {}),
      ...(config.OMNIA_RESOURCE_ID ? { resourceId: config.OMNIA_RESOURCE_ID } : {}),
      ...(config.AZURE_AUTHORITY_HOST ? { authorityHost: config.AZURE_AUTHORITY_HOST } : {}),
      ...(config.AZURE_TENANT_ID ? { tenantId: config.AZURE_TENANT_ID } : {}),
      ...(caPem ? { caPem } : {}),
      ...(authorityCaPem ? { authorityCaPem } : {}),
      auth: authFrom(config),
      onDeviceCode: (p) => {
        // The code is for a person to type, not a secret the service holds; the token it leads to never is logged.
        logger.warn({ userCode: p.userCode, verificationUri: p.verificationUri }, "Omnia sign-in waits for a person (device code)");
        prompt({ ...p, since: new Date() });
      },
      onRetry: (e) =>
        logger.info({ request: e.request, attempt: e.attempt, delayMs: e.delayMs, err: e.error.message }, "Omnia request retried"),
    });
  } catch (err) {
    if (err instanceof OmniaConfigError)
      throw new ConfigError(`invalid Omnia configuration: ${err.message}`, ["OMNIA_ENVIRONMENT", "OMNIA_URL"]);
    throw err;
  }
}

/** The client, calling `answered` whenever one of its calls succeeds. */
function whenAnswered(api: OmniaApi, answered: () => void): OmniaApi {
  return new Proxy(api, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const result = value.apply(target, args);
        if (result instanceof Promise) result.then(answered, () => {});
        return result;
      };
    },
  });
}

/**
 * A pending device-code sign-in in the status reports, without the code: whoever enters the code signs the service in
 * as themselves, so it is shown only to platform:read callers (GetAuthPrompt), not to every status reader.
 */
function signInCounters(prompt: AuthPrompt | undefined): PipelineCounters[] {
  if (!prompt) return [];
  return [
    create(PipelineCountersSchema, {
      name: "omnia-sign-in",
      lastError: "the Omnia sign-in waits for a person (device code): GetAuthPrompt shows the code and where to enter it",
      lastErrorTime: timestampFromDate(prompt.since),
    }),
  ];
}

/**
 * omnia-reader: the OmniaReaderService API (readers, Omnia's verbs passed through), one ReaderPipeline per reader,
 * started from the omnia_readers bucket once the bus is reachable and the declared readers are in, and one RouteSink
 * per route into Omnia.
 */
export async function startOmniaReader(config: OmniaReaderConfig, logger: Logger, options: OmniaReaderOptions = {}): Promise<OmniaReader> {
  const declared = config.OMNIA_READERS_FILE ? readReadersFile(config.OMNIA_READERS_FILE) : [];
  if (declared.length > config.OMNIA_MAX_READERS)
    throw new ConfigError(`OMNIA_READERS_FILE: ${declared.length} readers, more than OMNIA_MAX_READERS=${config.OMNIA_MAX_READERS}`, [
      "OMNIA_READERS_FILE",
      "OMNIA_MAX_READERS",
    ]);
  let pending: AuthPrompt | undefined;
  // Any answer from Omnia means a token was had: the sign-in a prompt asked for is over.
  const api =
    options.api ??
    whenAnswered(
      clientFrom(config, logger, (p) => (pending = p)),
      () => (pending = undefined),
    );
  const authPrompt = () => (pending && Date.now() - pending.since.getTime() < 15 * 60_000 ? pending : undefined);
  let readers!: ReaderManager;
  let sinks!: SinkManager;
  const running = await startBusService(
    SERVICE,
    config,
    logger,
    (bus) => {
      readers = new ReaderManager({
        bus,
        api,
        logger,
        maxReaders: config.OMNIA_MAX_READERS,
        maxSeries: config.OMNIA_MAX_SERIES_PER_READER,
        maxPagesPerPoll: config.OMNIA_MAX_PAGES_PER_POLL,
        ...(options.readBackoff ? { readBackoff: options.readBackoff } : {}),
        ...(options.readAttempts ? { readAttempts: options.readAttempts } : {}),
      });
      sinks = new SinkManager({
        bus,
        api,
        logger,
        ackWaitMs: config.OMNIA_SINK_ACK_WAIT_MS,
        maxBatchPoints: config.OMNIA_SINK_MAX_BATCH_EVENTS,
        ...(options.redeliveryBackoff ? { backoff: options.redeliveryBackoff } : {}),
      });
      return {
        routes: (router) => router.service(OmniaReaderService, omniaReaderService({ readers, api, authPrompt })),
        errors: [omniaReaderErrors],
        declared: {
          setting: "OMNIA_READERS_FILE",
          entries: declared.length,
          apply: () => applyReaders(readers, declared, logger),
          runAfterApply: true,
        },
        run: async () => {
          sinks.start();
          await readers.run();
        },
        counters: () => [...readers.counters(), ...sinks.counters(), ...signInCounters(authPrompt())],
        // Readers finish the page they publish and store its cursor, routes hand back unsent deliveries, before the bus drains.
        stop: async () => {
          await Promise.all([readers.stop(), sinks.stop()]);
        },
      };
    },
    options,
  );
  return Object.assign(running, { readers, sinks, api });
}
