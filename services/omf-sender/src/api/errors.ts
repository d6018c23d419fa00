import { Code, ConnectError } from "@connectrpc/connect";
import { KeyExistsError } from "@meridian/bus";
import type { ErrorTable } from "@meridian/service-kit";
import { CredentialsError, EndpointPolicyError, EndpointRevisionError } from "../pipeline/endpoints.js";
import {
  OmfBadRequestError,
  OmfConfigError,
  OmfNotFoundError,
  OmfResponseTooLargeError,
  OmfServerError,
  OmfThrottledError,
} from "../platform/index.js";
import { policyViolationsToProto } from "./convert.js";
import { EndpointReadError } from "./readback.js";

/** A read-back's endpoint answer, by what the caller can do about it. */
function readCode(err: EndpointReadError): Code {
  const e = err.endpointError;
  // No such point, stream or type at the endpoint.
  if (e instanceof OmfNotFoundError) return Code.NotFound;
  // The endpoint is down, slow or shedding load: try again later.
  if (e instanceof OmfServerError || e instanceof OmfThrottledError) return Code.Unavailable;
  if (e instanceof OmfResponseTooLargeError) return Code.ResourceExhausted;
  // The endpoint refused what was asked of it (a bad index or filter).
  if (e instanceof OmfBadRequestError) return Code.InvalidArgument;
  // Credentials refused, TLS, an answer that is not the documented one: the endpoint's set-up.
  return Code.FailedPrecondition;
}

/** omf-sender's errors at the API edge; bus errors are the starter's table. */
export const omfSenderErrors: ErrorTable = (err) => {
  // The endpoints bucket is the only one the API creates keys in.
  if (err instanceof KeyExistsError) return new ConnectError(`endpoint "${err.key}" already exists`, Code.AlreadyExists);
  // Someone changed the endpoint after the caller read it: read again, decide again.
  if (err instanceof EndpointRevisionError) return new ConnectError(err.message, Code.Aborted);
  // The operator's settings do not permit the endpoint (allowed hosts, insecure settings, CA directory).
  if (err instanceof EndpointPolicyError)
    return new ConnectError(
      `endpoint "${err.endpointId}" is not permitted: ${policyViolationsToProto(err.violations)
        .map((v) => `${v.path}: ${v.reason}`)
        .join("; ")}`,
      Code.FailedPrecondition,
    );
  // A stored endpoint whose secret cannot be read or whose settings no longer validate: the operator must fix it.
  if (err instanceof CredentialsError || err instanceof OmfConfigError) return new ConnectError(err.message, Code.FailedPrecondition);
  // A read-back the endpoint answered with an error (its text already redacted).
  if (err instanceof EndpointReadError) return new ConnectError(err.message, readCode(err));
  return undefined;
};
