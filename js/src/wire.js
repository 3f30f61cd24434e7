// Data-channel envelope (docs/PROTOCOL.md 2.3-2.5): [1, type, ...fields].
// Mirrors netcode/protocol/wire.py: same types, field ranges and limits.

import { DEFAULT_LIMITS, DecodeError, EncodeError, Float, decode, encode, payloadOffset } from "./msgpack.js";

export const VERSION = 1;
export const MsgType = Object.freeze({
  STATE: 1,
  EVENT: 2,
  SNAPSHOT: 3,
  PING: 4,
  PONG: 5,
  BYE: 6,
  CHUNK: 7,
  ACK: 8,
  RELAY: 9, // star: client -> host, [to, n, sent_us, payload]
  FORWARD: 10, // star: host -> client, [origin, n, sent_us, payload]
});
const NAMES = Object.fromEntries(Object.entries(MsgType).map(([k, v]) => [v, k]));
const FIELD_COUNT = { 1: 5, 2: 1, 3: 5, 4: 1, 5: 2, 6: 1, 7: 4, 8: 4, 9: 4, 10: 4 };
const MAX_PEER_ID = 64;
const PAYLOAD_LAST = new Set([1, 2, 3, 9, 10]);
const U16 = 0xffff;
const U32 = 0xffffffff;
/** Worst-case CHUNK envelope overhead (PROTOCOL.md 2.4). */
export const CHUNK_OVERHEAD = 19;
/** netcode sends events over this size as CHUNKs of at most this many bytes (2.4, 2.7). */
export const EVENT_PACKET_BYTES = 1_200;

function header(type, fields) {
  // The header fields are small ints; the typed encoder writes them as msgpack ints.
  const bytes = encode([VERSION, type, ...fields]);
  return bytes;
}

function withPayload(type, fields, payload, limits) {
  return withBody(type, fields, encode(payload, limits));
}

/** A STATE/SNAPSHOT/EVENT envelope around an already encoded payload ``body``. */
export function withBody(type, fields, body) {
  // The envelope array is not counted by the depth/container limits: the payload is
  // encoded on its own and spliced after the header (array length + 1).
  const head = encode([VERSION, type, ...fields, null]);
  const out = new Uint8Array(head.length - 1 + body.length);
  out.set(head.subarray(0, head.length - 1));
  out.set(body, head.length - 1);
  return out;
}

function checkUint(value, max, name) {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new EncodeError(`${name}: expected an int in 0..${max}, got ${String(value)}`);
  }
}

function checkHeader(m) {
  checkUint(m.seq, U16, "seq");
  checkUint(m.ack, U16, "ack");
  checkUint(m.ackBits, U32, "ackBits");
  checkUint(m.sentUs, U32, "sentUs");
}

/** The encoded payload (last element) of a RELAY/FORWARD envelope, to pass it on as is. */
export function payloadBytes(bytes) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return data.subarray(payloadOffset(data, 5)); // version, type, to|origin, n, sent_us
}

/** Encode one message object ({type, ...}) to bytes; throws EncodeError. */
export function serialize(m, limits = DEFAULT_LIMITS) {
  let out;
  switch (m.type) {
    case MsgType.STATE:
    case MsgType.SNAPSHOT:
      checkHeader(m);
      out = withPayload(m.type, [m.seq, m.ack, m.ackBits, m.sentUs], m.payload, limits);
      break;
    case MsgType.ACK:
      checkHeader(m);
      out = header(m.type, [m.seq, m.ack, m.ackBits, m.sentUs]);
      break;
    case MsgType.EVENT:
      out = withPayload(m.type, [], m.payload, limits);
      break;
    case MsgType.PING:
      checkUint(m.sentUs, U32, "sentUs");
      out = header(m.type, [m.sentUs]);
      break;
    case MsgType.PONG:
      checkUint(m.echoUs, U32, "echoUs");
      checkUint(m.sentUs, U32, "sentUs");
      out = header(m.type, [m.echoUs, m.sentUs]);
      break;
    case MsgType.BYE:
      if (typeof m.reason !== "string" || m.reason.length > 256) {
        throw new EncodeError("BYE: reason must be a str of at most 256 chars");
      }
      out = header(m.type, [m.reason]);
      break;
    case MsgType.RELAY:
    case MsgType.FORWARD: {
      const who = m.type === MsgType.RELAY ? m.to : m.origin;
      const min = m.type === MsgType.RELAY ? 0 : 1;
      if (typeof who !== "string" || who.length < min || who.length > MAX_PEER_ID) {
        throw new EncodeError(`${m.type === MsgType.RELAY ? "RELAY to" : "FORWARD origin"}: a peer id`);
      }
      checkUint(m.n, U16, "n");
      checkUint(m.sentUs, U32, "sentUs");
      const fields = [who, m.n, m.sentUs];
      out = m.body ? withBody(m.type, fields, m.body) : withPayload(m.type, fields, m.payload, limits);
      break;
    }
    case MsgType.CHUNK:
      checkUint(m.msgId, U32, "msgId");
      checkUint(m.index, U16, "index");
      checkUint(m.count, U16, "count");
      if (m.count < 1 || m.index >= m.count) throw new EncodeError("CHUNK: need 0 <= index < count");
      out = header(m.type, [m.msgId, m.index, m.count, m.data]);
      break;
    default:
      throw new EncodeError(`unknown message type ${String(m.type)}`);
  }
  const max = m.type === MsgType.EVENT ? limits.maxEventBytes : limits.maxPacketBytes;
  if (out.length > max) throw new EncodeError(`message of ${out.length} B exceeds the limit of ${max}`);
  return out;
}

/** A value from the network, for an error message (never throws). */
function show(v) {
  if (v === null || typeof v !== "object") return String(v);
  return Array.isArray(v) ? "an array" : v instanceof Uint8Array ? "bin" : "a map";
}

function uint(value, max, name, kind) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    if (value instanceof Float) value = `float ${value.value}`;
    throw new DecodeError(`${kind}: ${name}: expected an int in 0..${max}, got ${show(value)}`);
  }
  return value;
}

/** Decode one envelope; throws DecodeError on anything off-spec. */
export function parse(bytes, limits = DEFAULT_LIMITS, maxBytes = limits.maxPacketBytes) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (data.length > maxBytes) {
    throw new DecodeError(`packet of ${data.length} bytes exceeds the limit of ${maxBytes}`);
  }
  const obj = decode(data, limits, -1);
  if (!Array.isArray(obj) || obj.length < 2) throw new DecodeError("envelope must be an array [version, type, ...]");
  if (obj[0] !== VERSION) throw new DecodeError(`unsupported envelope version ${show(obj[0])}`);
  const type = obj[1];
  const kind = typeof type === "number" ? NAMES[type] : undefined;
  if (kind === undefined) throw new DecodeError(`unknown message type ${show(type)}`);
  if (obj.length !== FIELD_COUNT[type] + 2) {
    throw new DecodeError(`${kind}: expected ${FIELD_COUNT[type]} fields, got ${obj.length - 2}`);
  }
  const fields = obj.slice(2);
  const last = fields.length - 1;
  // A float payload (a bare float as the whole payload) was marked by the decoder.
  if (fields[last] instanceof Float && PAYLOAD_LAST.has(type)) {
    fields[last] = fields[last].value;
  }
  return build(type, kind, fields);
}

function build(type, kind, f) {
  switch (type) {
    case MsgType.STATE:
    case MsgType.SNAPSHOT:
    case MsgType.ACK: {
      const m = {
        type,
        seq: uint(f[0], U16, "seq", kind),
        ack: uint(f[1], U16, "ack", kind),
        ackBits: uint(f[2], U32, "ack_bits", kind),
        sentUs: uint(f[3], U32, "sent_us", kind),
      };
      if (type !== MsgType.ACK) m.payload = f[4];
      return m;
    }
    case MsgType.EVENT:
      return { type, payload: f[0] };
    case MsgType.PING:
      return { type, sentUs: uint(f[0], U32, "sent_us", kind) };
    case MsgType.PONG:
      return { type, echoUs: uint(f[0], U32, "echo_us", kind), sentUs: uint(f[1], U32, "sent_us", kind) };
    case MsgType.BYE:
      if (typeof f[0] !== "string" || f[0].length > 256) throw new DecodeError("BYE: reason must be a str");
      return { type, reason: f[0] };
    case MsgType.RELAY:
    case MsgType.FORWARD: {
      const min = type === MsgType.RELAY ? 0 : 1;
      if (typeof f[0] !== "string" || f[0].length < min || f[0].length > MAX_PEER_ID) {
        throw new DecodeError(`${kind}: bad peer id`);
      }
      const m = { type, n: uint(f[1], U16, "n", kind), sentUs: uint(f[2], U32, "sent_us", kind), payload: f[3] };
      if (type === MsgType.RELAY) m.to = f[0];
      else m.origin = f[0];
      return m;
    }
    default: {
      const m = {
        type,
        msgId: uint(f[0], U32, "msg_id", kind),
        index: uint(f[1], U16, "index", kind),
        count: uint(f[2], U16, "count", kind),
        data: f[3],
      };
      if (m.count < 1 || m.index >= m.count) throw new DecodeError("CHUNK: need 0 <= index < count");
      if (!(m.data instanceof Uint8Array)) throw new DecodeError("CHUNK: data must be bin");
      return m;
    }
  }
}

/**
 * Encode an event as the packets to send on a reliable channel: one EVENT when it fits
 * ``packetBytes`` (netcode: 1,200 B, one SCTP chunk), else CHUNKs of the EVENT bytes.
 */
export function encodeEventPackets(payload, msgId, limits = DEFAULT_LIMITS, packetBytes = EVENT_PACKET_BYTES) {
  const whole = serialize({ type: MsgType.EVENT, payload }, limits);
  if (whole.length <= packetBytes) return [whole];
  const piece = Math.max(1, Math.min(packetBytes, limits.maxPacketBytes - CHUNK_OVERHEAD));
  const count = Math.ceil(whole.length / piece);
  if (count > U16) throw new EncodeError(`event needs ${count} chunks, more than ${U16}`);
  const out = [];
  for (let i = 0; i < count; i++) {
    const data = whole.subarray(i * piece, (i + 1) * piece);
    out.push(serialize({ type: MsgType.CHUNK, msgId: msgId >>> 0, index: i, count, data }, limits));
  }
  return out;
}

/** Reassembles CHUNKs of one reliable channel (PROTOCOL.md 2.4); one message at a time. */
export class ChunkAssembler {
  constructor(limits = DEFAULT_LIMITS) {
    this.limits = limits;
    this.reset();
  }
  reset() {
    this.parts = [];
    this.size = 0;
    this.msgId = -1;
    this.count = 0;
  }
  /** Feed one CHUNK; returns the EVENT message when complete, else null. Throws DecodeError. */
  push(chunk) {
    if (chunk.index === 0) {
      // A new message before the last one completed drops the partial one (2.4).
      this.reset();
      this.msgId = chunk.msgId;
      this.count = chunk.count;
    } else if (chunk.msgId !== this.msgId || chunk.count !== this.count || chunk.index !== this.parts.length) {
      this.reset();
      throw new DecodeError("CHUNK out of sequence: partial message dropped");
    }
    this.size += chunk.data.length;
    if (this.size > this.limits.maxEventBytes) {
      this.reset();
      throw new DecodeError(`chunked message over maxEventBytes=${this.limits.maxEventBytes}`);
    }
    this.parts.push(chunk.data);
    if (this.parts.length < this.count) return null;
    const whole = new Uint8Array(this.size);
    let at = 0;
    for (const p of this.parts) whole.set(p, at), (at += p.length);
    this.reset();
    const msg = parse(whole, this.limits, this.limits.maxEventBytes);
    if (msg.type !== MsgType.EVENT) throw new DecodeError("reassembled CHUNK message is not an EVENT");
    return { msg, size: whole.length };
  }
}
