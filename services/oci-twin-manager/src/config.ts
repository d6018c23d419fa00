import { credentialsKeySettings } from "@meridian/service-kit";
import { serviceSettings } from "@meridian/service-kit/bus";
import { z } from "zod";

const path = z.string().min(1).max(4096);
/** An https base URL (plain http only for an emulator on loopback is the platform client's to allow). */
const baseUrl = z.url().max(2048);
const OCID = /^ocid1\.[a-z0-9]+\.[A-Za-z0-9._:-]{1,400}$/;

/**
 * oci-twin-manager settings (environment variables, or `<NAME>_FILE` for secrets). The control plane is signed as
 * OCI_AUTH says (an API key of an OCI config file, or a principal); the ORDS data API needs the identity domain's
 * confidential application and user (OCI_DATA_*), without which QueryTwinData and the source pipelines are refused.
 * Device secrets given to Meridian are sealed in KV with OCI_CREDENTIALS_KEY.
 */
export const ociTwinManagerConfig = z
  .object({
    ...serviceSettings(8085),
    /** OCI_CREDENTIALS_KEY (AES-256, base64) and OCI_CREDENTIALS_PREVIOUS_KEYS: device secrets are sealed with it. */
    ...credentialsKeySettings("OCI"),
    /** How control-plane requests are signed (manage-dt's --auth, and OKE's workload identity). */
    OCI_AUTH: z.enum(["api_key", "instance_principal", "resource_principal", "workload_identity", "security_token"]).default("api_key"),
    /** The OCI config file of api_key and security_token; `~` is the home directory. */
    OCI_CONFIG_FILE: path.default("~/.oci/config"),
    OCI_PROFILE: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[A-Za-z0-9_.-]+$/, "must be a profile name of the OCI config file")
      .default("DEFAULT"),
    /** e.g. eu-frankfurt-1; else the profile's or the principal's region. */
    OCI_REGION: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z0-9-]+$/, "must be an OCI region id, e.g. eu-frankfurt-1")
      .optional(),
    /** The control plane's base URL without /20250531 (an emulator, a proxy); else OCI's for the region. */
    OCI_IOT_ENDPOINT: baseUrl.optional(),
    /** Replaces https://<dataHost> of the domain group (the ORDS data API). */
    OCI_DATA_URL: baseUrl.optional(),
    /** Replaces https://<deviceHost> of the domain (device ingest). */
    OCI_DEVICE_URL: baseUrl.optional(),
    /** Replaces https://<dbAllowedIdentityDomainHost> (the identity domain's token endpoint). */
    OCI_IDENTITY_URL: baseUrl.optional(),
    /** PEM file of a CA trusted beside the system's for all of OCI's hosts (an emulator, a TLS-inspecting proxy). */
    OCI_CA_FILE: path.optional(),
    /** The IoT domain of twins that name none, and of routes whose target is "default". */
    OCI_IOT_DOMAIN_ID: z.string().max(512).regex(OCID, "must be an IoT domain OCID (ocid1.iotdomain.…)").optional(),
    /** The identity domain's confidential application and user the ORDS data API trusts (manage-dt's `identity`). */
    OCI_DATA_CLIENT_ID: z.string().min(1).max(256).optional(),
    OCI_DATA_CLIENT_SECRET: z.string().min(1).max(4096).optional(),
    OCI_DATA_USERNAME: z.string().min(1).max(256).optional(),
    OCI_DATA_PASSWORD: z.string().min(1).max(4096).optional(),
    /** JSON file of twins reconciled at start: `{"twins": [TwinSpec, …]}` in proto JSON. */
    OCI_TWINS_FILE: path.optional(),
    /** Twins the service manages before CreateTwin refuses another. */
    OCI_MAX_TWINS: z.coerce.number().int().min(1).max(100_000).default(1000),
    /** How often a twin's data sets are read from ORDS, unless its source says otherwise. */
    OCI_SOURCE_POLL_MS: z.coerce.number().int().min(200).max(3_600_000).default(5000),
    /** Rows per ORDS page (ORDS's own cap is 500). */
    OCI_SOURCE_PAGE_ROWS: z.coerce.number().int().min(1).max(500).default(500),
    /** Redelivery deadline of a route's consumer while the device endpoint is posted to. */
    OCI_SINK_ACK_WAIT_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
    /** Bus messages one route into OCI works on at once. */
    OCI_SINK_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(1024).default(64),
    /** Per request to OCI (control plane, ORDS, identity domain, device host). */
    OCI_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1000).max(300_000).default(30_000),
  })
  .superRefine((c, ctx) => {
    const data = ["OCI_DATA_CLIENT_ID", "OCI_DATA_CLIENT_SECRET", "OCI_DATA_USERNAME", "OCI_DATA_PASSWORD"] as const;
    const set = data.filter((k) => c[k] !== undefined);
    // Half a credential would fail at the first query, far from the setting that is missing.
    if (set.length > 0 && set.length < data.length)
      for (const k of data.filter((k) => c[k] === undefined))
        ctx.addIssue({ code: "custom", path: [k], message: `must be set with ${set.join(", ")} (the ORDS data API needs all four)` });
    if (c.OCI_CREDENTIALS_PREVIOUS_KEYS.length > 0 && !c.OCI_CREDENTIALS_KEY)
      ctx.addIssue({ code: "custom", path: ["OCI_CREDENTIALS_KEY"], message: "must be set when OCI_CREDENTIALS_PREVIOUS_KEYS is" });
  });

export type OciTwinManagerConfig = z.infer<typeof ociTwinManagerConfig>;
