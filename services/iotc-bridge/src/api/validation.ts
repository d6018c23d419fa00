import { RequestViolations } from "@meridian/service-kit";
import { templateProblem } from "../pipeline/device-ids.js";
import { IotcError, validateRegistrationId } from "../platform/index.js";

/** Request validation, all in one place: every problem is reported with its field path (proto names). */

/** As route ids: the application id is the connection token of its subjects. */
export const APPLICATION_ID = /^[a-z][a-z0-9-]{0,62}$/;
const ID_SCOPE = /^[A-Za-z0-9]{1,64}$/;
const HOST =
  /^(?=.{1,253}(:|$))[A-Za-z0-9]([A-Za-z0-9-]{0,62})?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62})?)*(:[0-9]{1,5})?$|^\[[0-9a-fA-F:.]+\](:[0-9]{1,5})?$/;
/** DTDL v2 digital twin model identifier. */
const DTMI = /^dtmi:[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?(?::[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?)*;[1-9][0-9]{0,8}$/;
const COMPONENT = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;
const PEM_KEY = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

export const MAX_DISPLAY_NAME = 200;
export const MAX_MODEL_ID = 2048;
export const MAX_PEM_BYTES = 64 * 1024;
/** IoT Hub's device-to-cloud limit (body and properties). */
export const MAX_TELEMETRY_BYTES = 256 * 1024;
/** IoT Hub's limit of the reported section of a twin. */
export const MAX_PATCH_BYTES = 32 * 1024;
export const MAX_PROPERTIES = 64;
export const MAX_PROPERTY_NAME = 128;
export const MAX_PROPERTY_VALUE = 4096;
export const MAX_MESSAGE_ID = 128;
export const MAX_PAGE_SIZE = 1000;

export class Violations extends RequestViolations {
  applicationId(path: string, value: string): void {
    if (value === "") this.add(path, "is required");
    else if (!APPLICATION_ID.test(value)) this.add(path, "must be 1-63 lower-case letters, digits or '-', starting with a letter");
  }
  deviceId(path: string, value: string): void {
    if (value === "") {
      this.add(path, "is required");
      return;
    }
    try {
      validateRegistrationId(value, path);
    } catch (err) {
      if (!(err instanceof IotcError)) throw err;
      // The platform's message starts with the field it was given.
      this.add(path, err.message.startsWith(`${path}: `) ? err.message.slice(path.length + 2) : err.message);
    }
  }
  idScope(path: string, value: string): void {
    if (value === "") this.add(path, "is required");
    else if (!ID_SCOPE.test(value)) this.add(path, "must be the application's DPS ID scope (letters and digits, e.g. 0ne00123456)");
  }
  host(path: string, value: string): void {
    if (value !== "" && !HOST.test(value)) this.add(path, `"${value.slice(0, 100)}" is not host[:port]`);
  }
  modelId(path: string, value: string): void {
    if (value === "") return;
    if (value.length > MAX_MODEL_ID) this.add(path, `longer than ${MAX_MODEL_ID} characters`);
    else if (!DTMI.test(value)) this.add(path, `"${value.slice(0, 100)}" is not a DTDL model id (dtmi:<path>;<version>)`);
  }
  template(path: string, value: string): void {
    if (value === "") return;
    const problem = templateProblem(value);
    if (problem) this.add(path, problem);
  }
  component(path: string, value: string): void {
    if (value !== "" && !COMPONENT.test(value)) this.add(path, "must be a DTDL component name ([A-Za-z][A-Za-z0-9_]*, at most 64)");
  }
  maxLength(path: string, value: string, max: number): void {
    if (value.length > max) this.add(path, `longer than ${max} characters`);
  }
  range(path: string, value: number | undefined, min: number, max: number): void {
    if (value !== undefined && (value < min || value > max)) this.add(path, `must be ${min} to ${max}, got ${value}`);
  }
  /** A SAS key: base64 of 16 to 64 bytes (IoT Hub's keys are 32 or 64). The value is never echoed. */
  sasKey(path: string, value: string): void {
    if (value === "") {
      this.add(path, "is required");
      return;
    }
    const bytes = BASE64.test(value) && value.length % 4 === 0 ? Buffer.from(value, "base64").length : 0;
    if (bytes < 16 || bytes > 64) this.add(path, "must be a base64 SAS key of 16 to 64 bytes");
  }
  x509(path: string, chain: string, key: string): void {
    if (chain === "") this.add(`${path}.certificate_chain_pem`, "is required");
    else if (Buffer.byteLength(chain) > MAX_PEM_BYTES) this.add(`${path}.certificate_chain_pem`, `over ${MAX_PEM_BYTES} bytes`);
    else if (!PEM_CERT.test(chain)) this.add(`${path}.certificate_chain_pem`, "holds no PEM certificate");
    if (key === "") this.add(`${path}.private_key_pem`, "is required");
    else if (Buffer.byteLength(key) > MAX_PEM_BYTES) this.add(`${path}.private_key_pem`, `over ${MAX_PEM_BYTES} bytes`);
    else if (!PEM_KEY.test(key)) this.add(`${path}.private_key_pem`, "holds no PEM private key");
  }
  properties(path: string, props: Record<string, string>): void {
    const entries = Object.entries(props);
    if (entries.length > MAX_PROPERTIES) this.add(path, `at most ${MAX_PROPERTIES} properties, got ${entries.length}`);
    for (const [k, v] of entries) {
      if (k === "" || k.length > MAX_PROPERTY_NAME)
        this.add(`${path}[${JSON.stringify(k.slice(0, 40))}]`, `name must be 1-${MAX_PROPERTY_NAME} characters`);
      if (k.startsWith("$") || k.startsWith("iothub-"))
        this.add(`${path}[${JSON.stringify(k.slice(0, 40))}]`, "names starting with $ or iothub- are IoT Hub's own");
      if (v.length > MAX_PROPERTY_VALUE)
        this.add(`${path}[${JSON.stringify(k.slice(0, 40))}]`, `value longer than ${MAX_PROPERTY_VALUE} characters`);
    }
  }
}
