import { IdigiListenerService } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import type { GatewayConfig } from "./config.js";
import type { Backend } from "./service.js";

/** The platform services the gateway fronts, from the *_URL settings that are set. One row per platform service. */
export function backendsFromConfig(config: GatewayConfig): Backend[] {
  const backends: Backend[] = [];
  if (config.OMF_SENDER_URL) backends.push({ services: [OmfSenderService], url: config.OMF_SENDER_URL });
  if (config.IDIGI_LISTENER_URL) backends.push({ services: [IdigiListenerService], url: config.IDIGI_LISTENER_URL });
  return backends;
}
