import { serviceSettings } from "@meridian/service-kit/bus";
import { z } from "zod";

/**
 * omnia-reader settings (environment variables, or `<NAME>_FILE` for secrets). The Omnia credential is configuration
 * only (Entra ID through @azure/identity): requests never carry it, and it never reaches KV or a log.
 */
export const omniaReaderConfig = z.object({
  ...serviceSettings(8083),
  /** Which Omnia: its base URL, resource id and public client come from it. Default test, never production by accident. */
  OMNIA_ENVIRONMENT: z.enum(["dev", "test", "prod"]).default("test"),
  /** Replaces the environment's base URL, version included (an emulator). https only (plain http on loopback alone). */
  OMNIA_URL: z.url().optional(),
  /** Replaces the environment's resource id (the token's scope is `<id>/.default`). */
  OMNIA_RESOURCE_ID: z.string().min(1).max(200).optional(),
  /**
   * How the service signs in to Entra ID: `workload-identity` (AZURE_CLIENT_ID, AZURE_TENANT_ID,
   * AZURE_FEDERATED_TOKEN_FILE, as the Azure workload identity webhook sets them), `client-secret`
   * (AZURE_CLIENT_SECRET), `managed-identity`, `device-code` (a person signs in; the prompt is shown by GetAuthPrompt).
   */
  OMNIA_AUTH_MODE: z.enum(["workload-identity", "client-secret", "managed-identity", "device-code"]).default("workload-identity"),
  AZURE_TENANT_ID: z.string().min(1).max(200).optional(),
  AZURE_CLIENT_ID: z.string().min(1).max(200).optional(),
  AZURE_CLIENT_SECRET: z.string().min(1).max(4096).optional(),
  AZURE_FEDERATED_TOKEN_FILE: z.string().min(1).max(4096).optional(),
  /** Entra authority host (an emulator's https URL in tests and compose). */
  AZURE_AUTHORITY_HOST: z.url().optional(),
  /** PEM file of the CA that signed the Omnia API's certificate, trusted beside the system's (an emulator, a TLS proxy). */
  OMNIA_CA_FILE: z.string().min(1).max(4096).optional(),
  /** PEM file of the CA that signed the Entra ID authority's certificate (the Entra emulator's). */
  AZURE_AUTHORITY_CA_FILE: z.string().min(1).max(4096).optional(),
  /** JSON file of readers applied at start: `{"readers": [ReaderSpec, …]}` in proto JSON. */
  OMNIA_READERS_FILE: z.string().optional(),
  /** Readers the service holds before CreateReader refuses another. */
  OMNIA_MAX_READERS: z.coerce.number().int().min(1).max(10_000).default(100),
  /** Series one reader may poll (after its queries are resolved); more are left out with a warning. */
  OMNIA_MAX_SERIES_PER_READER: z.coerce.number().int().min(1).max(100_000).default(1000),
  /** Pages one series may take in one poll before the poll moves on (the rest is read next poll). */
  OMNIA_MAX_PAGES_PER_POLL: z.coerce.number().int().min(1).max(10_000).default(100),
  /** Events per write-multiple call of a route to Omnia. */
  OMNIA_SINK_MAX_BATCH_EVENTS: z.coerce.number().int().min(1).max(100_000).default(1000),
  /** Redelivery deadline of a route's consumer while Omnia is written. */
  OMNIA_SINK_ACK_WAIT_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
});

export type OmniaReaderConfig = z.infer<typeof omniaReaderConfig>;
