export { endpointToProto, endpointViolations, settingsFromProto } from "./convert.js";
export { type ApiDeps, omfSenderService } from "./omf-sender.js";
