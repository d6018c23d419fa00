/** omf-sender: its starter and settings. The OMF client alone is `@meridian/omf-sender/platform`. */
export { type OmfSenderConfig, omfSenderConfig } from "./config.js";
export { type OmfSender, type OmfSenderOptions, startOmfSender } from "./service.js";
