import { SEED_CONTAINERS, SEED_TYPES } from "@meridian/fixtures/omf-seed";
/**
 * Golden response bodies, built from the shapes and texts in shared/protocols/omf.md (§2.1, §2.2, §1.7, §6.9)
 * and the reference sample's OMF fixtures (§3.3). Test-only. Message texts are the notes' verbatim; the notes give
 * no EventCode for 409 events, so 4004/4005 below are placeholders, and Reason/Suggestions texts are made up.
 */

/** §2.1 PI Web API per-message report: message 1 conflicts (409), message 0 fine. Shape verbatim from the notes. */
export const PI_PARTIAL_409 = {
  OperationId: "1f6e2d8a-6a58-4c3f-9d7e-0b2b2a0c9e11",
  Messages: [
    {
      MessageIndex: 0,
      Events: [],
      Status: { Code: 200, HighestSeverity: "Info" },
    },
    {
      MessageIndex: 1,
      Events: [
        {
          EventInfo: {
            Message: "A type with the supplied ID and version already exists, but it does not match the supplied type.",
            Reason: "The type definition differs from the existing type.",
            Suggestions: ["Delete the existing type or use a different type ID."],
            EventCode: 4004,
            Severity: "Error",
            Parameters: [
              { Name: "TypeId", Value: "FirstDynamicType" },
              { Name: "TypeVersion", Value: "1.0.0.0" },
            ],
          },
          ExceptionInfo: null,
          Severity: "Error",
          InnerEvents: [],
        },
      ],
      Status: { Code: 409, HighestSeverity: "Error" },
    },
  ],
};

/** §6.9 / §1.2: a JSON parse failure, reported for the whole request (`MessageIndex: null`), code 3002, HTTP 400. */
export const PI_PARSE_ERROR = {
  OperationId: "9a4c7c1e-0000-4000-8000-000000000001",
  Messages: [
    {
      MessageIndex: null,
      Events: [
        {
          EventInfo: {
            Message: "ParserException",
            Reason: "The message body could not be parsed as JSON.",
            Suggestions: [],
            EventCode: 3002,
            Severity: "Error",
            Parameters: [],
          },
          ExceptionInfo: {
            Type: "Newtonsoft.Json.JsonReaderException",
            Message: "Unexpected character encountered while parsing value: x.",
          },
          Severity: "Error",
          InnerEvents: [],
        },
      ],
      Status: { Code: 400, HighestSeverity: "Error" },
    },
  ],
};

/** The same 409 event with the details under `Event` instead of `EventInfo` (the notes give both spellings). */
export const PI_409_EVENT_KEY = {
  OperationId: "2b1a3c4d-0000-4000-8000-000000000002",
  Messages: [
    {
      MessageIndex: 0,
      Events: [
        {
          Event: {
            Message: "A container with the supplied ID already exists, but does not match the supplied container.",
            Reason: null,
            Suggestions: [],
            EventCode: 4005,
            Severity: "Error",
            Parameters: [{ Name: "ContainerId", Value: "FirstContainer" }],
          },
          ExceptionInfo: null,
          Severity: "Error",
          InnerEvents: [
            {
              EventInfo: { Message: "The supplied container overlaps with a different existing container.", Severity: "Error" },
              ExceptionInfo: null,
              Severity: "Error",
              InnerEvents: [],
            },
          ],
        },
      ],
      Status: { Code: 409, HighestSeverity: "Error" },
    },
  ],
};

/** §1.7: PI Web API 413 body. */
export const PI_413 = { Errors: ["Request content exceeds the maximum allowed length 4194304"] };

/** §2.2: CDS success (202, asynchronous). */
export const CDS_ACCEPTED = { "Operation-Id": "5d6b0e0e-2a1f-4e1b-8b7a-3f1f7f1f7f1f" };

/** §2.2: CDS ErrorResponseBody. */
export const CDS_ERROR_400 = {
  OperationId: "7c0c2f8a-1111-4222-8333-444455556666",
  Error: "Redefinition of the type with the same ID is not allowed",
  Reason: "A type with ID 'FirstDynamicType' already exists with a different definition.",
  Resolution: "Use a different type ID or delete the existing type.",
  Parameters: { TypeId: "FirstDynamicType" },
};

export const CDS_CONTAINER_NOT_DEFINED = {
  OperationId: "7c0c2f8a-1111-4222-8333-777788889999",
  Error: "Container is not defined",
  Reason: "Container 'ThirdContainer' was not found.",
  Resolution: "Send the container message first.",
  Parameters: {},
};

/** The reference sample's first type and container, as its OMF-Types.json / OMF-Containers.json have them. */
export const FIRST_DYNAMIC_TYPE = SEED_TYPES[0];
export const FIRST_CONTAINER = SEED_CONTAINERS[0];
