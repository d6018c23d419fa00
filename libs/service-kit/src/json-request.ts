import type { DescMessage, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext, type MethodImplSpec } from "@connectrpc/connect";
import {
  compressionNegotiate,
  createAsyncIterable,
  createMethodSerializationLookup,
  invokeUnaryImplementation,
  mergeNonProtocolHeaders,
  readAllBytes,
  type UniversalHandler,
  type UniversalHandlerOptions,
  type UniversalServerRequest,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import {
  codeToHttpStatus,
  contentTypeUnaryJson,
  errorToJsonBytes,
  headerContentType,
  headerTimeout,
  headerUnaryAcceptEncoding,
  headerUnaryContentLength,
  headerUnaryEncoding,
  parseContentType,
  parseTimeout,
  trailerMux,
} from "@connectrpc/connect/protocol-connect";

/**
 * A faster reader of one unary method's request in Connect JSON, for a method whose requests are large and many (the
 * gateway's Publish). protobuf-es reads JSON through the reflection of the schema, which made most of the gateway's
 * CPU per event; a reader written for the message's usual shape does the same in a fraction of the time.
 *
 * `read` gets the parsed body and returns the message exactly as protobuf-es's fromJson would make it, or undefined
 * for anything it does not handle itself (another shape, a null, a proto field name, a value that needs converting):
 * that body then goes to protobuf-es, so what is accepted and every error message stay the library's own.
 */
export interface JsonRequestReader<I extends DescMessage = DescMessage> {
  method: DescMethodUnary<I, DescMessage>;
  /**
   * `keys.count` is raised by one for every key of every object read: a body whose text holds more keys than that
   * repeats a key (or has one the reader did not read), and goes to protobuf-es, which refuses duplicates.
   */
  read(json: unknown, keys: KeyCount): MessageShape<I> | undefined;
}

/** Why a call's signal is aborted once it has been answered (shared: the call is over, nothing reads its stack). */
const CALL_ENDED = new ConnectError("the call has ended", Code.Canceled);

/** The keys a JsonRequestReader has read. */
export interface KeyCount {
  count: number;
}

/**
 * Wraps the router's handler of `spec.method`: a Connect unary JSON POST (what curl and the HTTP-JSON clients send)
 * is answered here, with the request read by `reader`; every other protocol, codec and HTTP method goes to `handler`.
 * The answer is what connect-es's own Connect handler gives (status, headers, compression, timeouts, interceptors, error
 * body): this is its unary POST path with the parse step swapped.
 */
export function withJsonRequestReader(
  handler: UniversalHandler,
  spec: MethodImplSpec & { kind: "unary" },
  reader: JsonRequestReader,
  opt: UniversalHandlerOptions,
): UniversalHandler {
  // The library's own parse and serialize for this method: the fallback for a body the reader leaves, and the answer.
  const serialization = createMethodSerializationLookup(spec.method, opt.binaryOptions, opt.jsonOptions, opt);
  const decoder = new TextDecoder();

  function parse(bytes: Uint8Array): unknown {
    const text = decoder.decode(bytes);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return serialization.getI(false).parse(bytes);
    }
    const keys: KeyCount = { count: 0 };
    const message = reader.read(json, keys);
    // protobuf-es refuses duplicate object keys, which JSON.parse merges without a word: the text then holds more
    // keys than the message was read from. A text with a backslash is scanned key by key instead.
    if (message === undefined || (text.includes("\\") ? mayHaveDuplicateKeys(bytes) : keysInText(text) !== keys.count)) {
      return serialization.getI(false).parse(bytes);
    }
    return message;
  }

  async function handleJsonPost(req: UniversalServerRequest): Promise<UniversalServerResponse> {
    const timeout = parseTimeout(req.header.get(headerTimeout), opt.maxTimeoutMs);
    const context = createHandlerContext({
      ...spec,
      service: spec.method.parent,
      requestMethod: req.method,
      protocolName: "connect",
      timeoutMs: timeout.timeoutMs,
      shutdownSignal: opt.shutdownSignal,
      requestSignal: req.signal,
      requestHeader: req.header,
      url: req.url,
      responseHeader: { [headerContentType]: contentTypeUnaryJson },
      contextValues: req.contextValues,
    });
    const compression = compressionNegotiate(
      opt.acceptCompression,
      req.header.get(headerUnaryEncoding),
      req.header.get(headerUnaryAcceptEncoding),
      headerUnaryAcceptEncoding,
    );
    let status = 200;
    let body: Uint8Array;
    try {
      if (opt.requestGate !== undefined) await opt.requestGate(context);
      if (compression.error) throw compression.error;
      if (timeout.error) throw timeout.error;
      let bytes = await readAllBytes(req.body as AsyncIterable<Uint8Array>, opt.readMaxBytes, req.header.get(headerUnaryContentLength));
      if (compression.request) bytes = await compression.request.decompress(bytes, opt.readMaxBytes);
      const input = parse(bytes);
      const output = await invokeUnaryImplementation(spec, context, input as MessageShape<DescMessage>, opt.interceptors);
      body = serialization.getO(false).serialize(output);
    } catch (e) {
      context.abort(e);
      const error = e instanceof ConnectError ? e : new ConnectError("internal error", Code.Internal, undefined, undefined, e);
      status = codeToHttpStatus(error.code);
      context.responseHeader.set(headerContentType, contentTypeUnaryJson);
      if (!error.isWireError) mergeNonProtocolHeaders(context.responseHeader, error.metadata);
      body = errorToJsonBytes(error, opt.jsonOptions);
    } finally {
      // With a reason: without one, abort() builds a DOMException (and its stack) per request.
      context.abort(CALL_ENDED);
    }
    if (compression.response && body.byteLength >= opt.compressMinBytes) {
      body = await compression.response.compress(body);
      context.responseHeader.set(headerUnaryEncoding, compression.response.name);
    }
    const header = trailerMux(context.responseHeader, context.responseTrailer);
    header.set(headerUnaryContentLength, body.byteLength.toString(10));
    return { status, body: createAsyncIterable([body]), header };
  }

  return Object.assign(
    (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
      if (req.method !== "POST" || opt.requireConnectProtocolHeader || !isAsyncIterable(req.body)) return handler(req);
      const type = parseContentType(req.header.get(headerContentType));
      if (type === undefined || type.stream || type.binary) return handler(req);
      return handleJsonPost(req);
    },
    {
      protocolNames: handler.protocolNames,
      service: handler.service,
      method: handler.method,
      requestPath: handler.requestPath,
      allowedMethods: handler.allowedMethods,
      supportedContentType: handler.supportedContentType,
    },
  );
}

function isAsyncIterable(body: unknown): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
/** Beyond this many keys in one object, the quadratic compare is not worth it: the body goes to the library's check. */
const MAX_KEYS_COMPARED = 64;

/**
 * How many object keys a JSON text that JSON.parse accepted holds, when it has no backslash (-1 for one with an
 * unclosed string, which JSON.parse does not accept). Without an escape, every quote opens or closes a string, and
 * outside strings a colon follows a key and nothing else.
 */
export function keysInText(text: string): number {
  let count = 0;
  let from = 0;
  for (;;) {
    const open = text.indexOf('"', from);
    const end = open < 0 ? text.length : open;
    for (let k = from; k < end; k++) if (text.charCodeAt(k) === COLON) count++;
    if (open < 0) return count;
    const close = text.indexOf('"', open + 1);
    if (close < 0) return -1;
    from = close + 1;
  }
}

/**
 * Whether a body that JSON.parse accepted may repeat a key within one object. False means it does not; true means it
 * does, or that this scan does not decide (a key with an escape, an object with very many keys), and the body then
 * goes to protobuf-es, whose own check gives the error. It works on the UTF-8 bytes: every byte of a multi-byte
 * character is 0x80 or above, so none is mistaken for JSON's punctuation.
 */
export function mayHaveDuplicateKeys(bytes: Uint8Array): boolean {
  // Keys of the open objects as byte ranges [start, end), and where each open object's keys begin (-1: an array).
  const keyStart: number[] = [];
  const keyEnd: number[] = [];
  const frames: number[] = [];
  // Without a backslash anywhere (the usual body), a string ends at the next quote and no key has an escape.
  const anyEscape = bytes.indexOf(BACKSLASH) >= 0;
  let expectKey = false;
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i]!;
    if (b === QUOTE) {
      const open = i + 1;
      let close = bytes.indexOf(QUOTE, open);
      let escaped = false;
      if (anyEscape) {
        for (let k = open; k < close; k++) if (bytes[k] === BACKSLASH) escaped = true;
        while (close > 0 && bytes[close - 1] === BACKSLASH) {
          // The quote is escaped if an odd number of backslashes precede it.
          let k = close - 1;
          while (k >= open && bytes[k] === BACKSLASH) k--;
          if ((close - 1 - k) % 2 === 0) break;
          close = bytes.indexOf(QUOTE, close + 1);
        }
      }
      if (close < 0) return true;
      i = close + 1;
      const frame = frames.length > 0 ? frames[frames.length - 1]! : -1;
      if (!expectKey || frame < 0) continue;
      if (escaped) return true;
      if (keyStart.length - frame >= MAX_KEYS_COMPARED) return true;
      const length = close - open;
      for (let k = frame; k < keyStart.length; k++) {
        if (keyEnd[k]! - keyStart[k]! === length && sameBytes(bytes, keyStart[k]!, open, length)) return true;
      }
      keyStart.push(open);
      keyEnd.push(close);
      continue;
    }
    if (b === OPEN_OBJECT) {
      frames.push(keyStart.length);
      expectKey = true;
    } else if (b === OPEN_ARRAY) {
      frames.push(-1);
      expectKey = false;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
      const frame = frames.pop()!;
      if (frame >= 0) {
        keyStart.length = frame;
        keyEnd.length = frame;
      }
      expectKey = false;
    } else if (b === COMMA) {
      expectKey = frames.length > 0 && frames[frames.length - 1]! >= 0;
    } else if (b === COLON) {
      expectKey = false;
    }
    i++;
  }
  return false;
}

function sameBytes(bytes: Uint8Array, a: number, b: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (bytes[a + k] !== bytes[b + k]) return false;
  return true;
}
