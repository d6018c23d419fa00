export { twinDescription } from "./convert.js";
export { ociTwinManagerErrors } from "./errors.js";
export { type OciTwinManagerDeps, ociTwinManagerService } from "./oci-twin-manager.js";
export { Violations } from "./validation.js";
