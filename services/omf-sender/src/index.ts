/** What other packages use: the API descriptors (the gateway proxies them) and the service itself. */
export * from "@meridian/contracts/meridian/omf/v1/omf_sender_service_pb";
export { type OmfSenderConfig, omfSenderConfig } from "./config.js";
export { type OmfSender, type OmfSenderOptions, SERVICE, startOmfSender, VERSION } from "./service.js";
