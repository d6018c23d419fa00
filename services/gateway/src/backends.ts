import type { DescService } from "@bufbuild/protobuf";
import { IdigiListenerService } from "@meridian/contracts/meridian/idigi/v1/idigi_listener_service_pb";
import { OmfSenderService } from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
import type { GatewayConfig } from "./config.js";

/** A service the gateway serves by forwarding to the Meridian service that owns it. */
export interface Backend {
  services: DescService[];
  url: string;
}

/** The platform services the gateway fronts, from the *_URL settings that are set. One row per platform service. */
export function backendsFromConfig(config: GatewayConfig): Backend[] {
  const backends: Backend[] = [];
  if (config.OMF_SENDER_URL) backends.push({ services: [OmfSenderService], url: config.OMF_SENDER_URL });
  if (config.IDIGI_LISTENER_URL) backends.push({ services: [IdigiListenerService], url: config.IDIGI_LISTENER_URL });
  return backends;
}
