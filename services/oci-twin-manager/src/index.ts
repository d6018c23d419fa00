/**
 * oci-twin-manager: OCI IoT Platform digital twins (models, adapters, instances), their ORDS data onto the bus and the
 * bus's telemetry into twins, behind meridian.oci.v1.OciTwinManagerService: its starter and settings. The OCI client
 * alone is `@meridian/oci-twin-manager/platform`.
 */
export { type OciTwinManagerConfig, ociTwinManagerConfig } from "./config.js";
export { type OciTwinManager, type OciTwinManagerOptions, startOciTwinManager } from "./service.js";
