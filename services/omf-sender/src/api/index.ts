export { endpointToProto, endpointViolations, settingsFromProto } from "./convert.js";
export { omfSenderErrors } from "./errors.js";
export { type ApiDeps, omfSenderService } from "./omf-sender.js";
