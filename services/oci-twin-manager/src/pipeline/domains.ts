import { OciInvalidArgumentError } from "../platform/errors.js";
import { createDataApiClient, createDeviceEndpointClient } from "../platform/index.js";
import type {
  DataAccessCredentials,
  DataApiClient,
  DeviceEndpointClient,
  DigitalTwinsClient,
  IotDomain,
  OciClientOptions,
} from "../platform/types.js";

export interface OciDomainsOptions {
  twins: DigitalTwinsClient;
  client: OciClientOptions;
  /** OCI_IOT_DOMAIN_ID. */
  defaultDomainId?: string | undefined;
  /** OCI_DATA_*: absent, the data API is refused. */
  dataAccess?: DataAccessCredentials | undefined;
  /** Instead of the platform's (tests). */
  createDataApi?: typeof createDataApiClient;
  createDeviceEndpoint?: typeof createDeviceEndpointClient;
}

const OCID = /^ocid1\.[a-z0-9]+\.[A-Za-z0-9._:-]{1,400}$/;

/**
 * Per IoT domain: its description (getIotDomain + its group: hosts and short ids) and its data and device clients,
 * made once and kept. A failed read is not kept, so the next call tries again.
 */
export class OciDomains {
  private readonly domains = new Map<string, Promise<IotDomain>>();
  private readonly data = new Map<string, Promise<DataApiClient>>();
  private readonly devices = new Map<string, Promise<DeviceEndpointClient>>();

  constructor(private readonly options: OciDomainsOptions) {}

  /** "" or "default" → OCI_IOT_DOMAIN_ID, else the OCID; OciInvalidArgumentError (field iot_domain_id) when neither works. */
  resolve(idOrDefault: string, field = "iot_domain_id"): string {
    if (idOrDefault === "" || idOrDefault === "default") {
      if (!this.options.defaultDomainId) throw new OciInvalidArgumentError(field, "names no IoT domain and OCI_IOT_DOMAIN_ID is not set");
      return this.options.defaultDomainId;
    }
    if (!OCID.test(idOrDefault)) throw new OciInvalidArgumentError(field, `"${idOrDefault.slice(0, 80)}" is not an IoT domain OCID`);
    return idOrDefault;
  }

  domain(id: string): Promise<IotDomain> {
    return this.cached(this.domains, id, () => this.options.twins.getIotDomain(id));
  }

  dataApi(id: string): Promise<DataApiClient> {
    const credentials = this.options.dataAccess;
    if (!credentials)
      return Promise.reject(
        new OciInvalidArgumentError(
          "OCI_DATA_CLIENT_ID",
          "the ORDS data API needs OCI_DATA_CLIENT_ID, OCI_DATA_CLIENT_SECRET, OCI_DATA_USERNAME and OCI_DATA_PASSWORD, which are not set",
        ),
      );
    const make = this.options.createDataApi ?? createDataApiClient;
    return this.cached(this.data, id, async () => make(await this.domain(id), credentials, this.options.client));
  }

  device(id: string): Promise<DeviceEndpointClient> {
    const make = this.options.createDeviceEndpoint ?? createDeviceEndpointClient;
    return this.cached(this.devices, id, async () => make(await this.domain(id), this.options.client));
  }

  /** Closes the data and device clients made (their connection pools). */
  async close(): Promise<void> {
    const made = [...this.data.values(), ...this.devices.values()];
    this.data.clear();
    this.devices.clear();
    await Promise.all(made.map((p) => p.then((c) => c.close?.()).catch(() => undefined)));
  }

  private cached<T>(map: Map<string, Promise<T>>, id: string, make: () => Promise<T>): Promise<T> {
    let p = map.get(id);
    if (!p) {
      const made = make();
      p = made;
      map.set(id, made);
      made.catch(() => {
        if (map.get(id) === made) map.delete(id);
      });
    }
    return p;
  }
}
