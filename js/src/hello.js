// The hello (docs/PROTOCOL.md 2.1.1): what two peers must agree on (protocol version,
// channel list, quantization map, decoder limits), sent in the offer and the answer so a
// mismatch fails fast with a reason instead of a connect timeout.
// Mirrors netcode/protocol/hello.py: same fields, same checks, same wording.

import { VERSION } from "./wire.js";

export const HELLO_KEY = "hello";
export const MISMATCH = "mismatch";
export const MAX_HELLO_CHANNELS = 1024; // channel ids are unique in 0..1023
export const MAX_LABEL_CHARS = 1024;
export const MAX_LIMIT_ENTRIES = 64;
export const MAX_DIFFERENCES = 8;
export const MAX_DETAIL_CHARS = 1024;
const MAX_INT = Number.MAX_SAFE_INTEGER;
/** The Limits every receiver enforces (maxStateBytes is a sender-side SHOULD: left out). */
export const LIMIT_NAMES = Object.freeze([
  "max_packet_bytes", "max_event_bytes", "max_depth", "max_container_len", "max_str_len",
  "max_containers", "max_snapshot_entities", "max_entity_fields", "max_snapshot_fields",
  "max_snapshot_bytes",
]);
const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

/** A malformed hello (counted as a bad packet by the link). */
export class HelloError extends Error {}

// ------------------------------------------------------------------ building

const utf8 = new TextEncoder();

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** FNV-1a 32 (8 hex digits) over {field: step} in canonical form; "" for none. */
export function quantizeHash(quantize) {
  const entries = quantize ? Object.entries(quantize) : [];
  if (entries.length === 0) return "";
  const items = entries.map(([name, step]) => [utf8.encode(name), Number(step)]);
  items.sort((a, b) => compareBytes(a[0], b[0])); // UTF-8 byte order = code point order
  let h = 0x811c9dc5;
  const f64 = new DataView(new ArrayBuffer(8));
  const feed = (byte) => {
    h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  };
  for (const [name, step] of items) {
    name.forEach(feed);
    feed(0);
    f64.setFloat64(0, step, false); // big-endian
    for (let i = 0; i < 8; i++) feed(f64.getUint8(i));
  }
  return h.toString(16).padStart(8, "0");
}

/** This side's hello ({version, channels, quantize, limits}) from the session options. */
export function helloOf(cfg) {
  const channels = cfg.channels.map((c) => ({
    id: c.id,
    label: c.label,
    ordered: c.ordered ?? true,
    max_retransmits: c.maxRetransmits ?? null,
    max_packet_lifetime_ms: c.maxPacketLifeTime ?? null,
  }));
  channels.sort((a, b) => a.id - b.id);
  const limits = {};
  for (const name of LIMIT_NAMES) limits[name] = cfg.limits[camel(name)];
  return { version: VERSION, channels, quantize: quantizeHash(cfg.quantize), limits };
}

/** The JSON object for the offer/answer data under "hello". */
export function serializeHello(h) {
  const out = { v: h.version, channels: h.channels.map((c) => ({ ...c })) };
  if (h.quantize !== null) out.quantize = h.quantize || null;
  if (h.limits !== null) out.limits = { ...h.limits };
  return out;
}

// ------------------------------------------------------------------ parsing

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);

function short(v) {
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (isObject(v)) return "an object";
  const text = typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? JSON.stringify(v) : String(v);
  return text.length <= 40 ? text : `${text.slice(0, 37)}...`;
}

function int(v, what, lo, hi) {
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
    throw new HelloError(`${what} must be an integer in ${lo}..${hi}, got ${short(v)}`);
  }
  return v;
}

function channel(v, i) {
  if (!isObject(v)) throw new HelloError(`channels[${i}] must be an object, got ${short(v)}`);
  const id = int(v.id, `channels[${i}].id`, 0, 1023);
  if (typeof v.label !== "string" || v.label.length === 0 || v.label.length > MAX_LABEL_CHARS) {
    throw new HelloError(`channels[${i}].label must be a str of 1..${MAX_LABEL_CHARS} chars`);
  }
  if (typeof v.ordered !== "boolean") throw new HelloError(`channels[${i}].ordered must be a bool, got ${short(v.ordered)}`);
  const opt = (x, name) => (x === undefined || x === null ? null : int(x, `channels[${i}].${name}`, 0, 65535));
  const rtx = opt(v.max_retransmits, "max_retransmits");
  const life = opt(v.max_packet_lifetime_ms, "max_packet_lifetime_ms");
  if (rtx !== null && life !== null) {
    throw new HelloError(`channels[${i}]: max_retransmits and max_packet_lifetime_ms both set`);
  }
  return { id, label: v.label, ordered: v.ordered, max_retransmits: rtx, max_packet_lifetime_ms: life };
}

function channels(v) {
  if (!Array.isArray(v)) throw new HelloError(`channels must be a list, got ${short(v)}`);
  if (v.length > MAX_HELLO_CHANNELS) throw new HelloError(`${v.length} channels, at most ${MAX_HELLO_CHANNELS}`);
  const out = v.map(channel);
  if (new Set(out.map((c) => c.id)).size !== out.length) throw new HelloError("channel ids must be unique");
  return out.sort((a, b) => a.id - b.id);
}

function limits(v) {
  if (!isObject(v)) throw new HelloError(`limits must be an object, got ${short(v)}`);
  const n = Object.keys(v).length;
  if (n > MAX_LIMIT_ENTRIES) throw new HelloError(`limits has ${n} entries, at most ${MAX_LIMIT_ENTRIES}`);
  const out = {};
  for (const name of LIMIT_NAMES) if (own(v, name)) out[name] = int(v[name], `limits.${name}`, 1, MAX_INT);
  return out;
}

/** A remote hello from its JSON value; throws only HelloError. */
export function parseHello(v) {
  if (!isObject(v)) throw new HelloError(`hello must be an object, got ${short(v)}`);
  const version = int(v.v, "v", 0, 65535);
  const chans = channels(v.channels);
  let quantize = null;
  if (own(v, "quantize")) {
    const q = v.quantize;
    if (q !== null && (typeof q !== "string" || !/^[0-9a-f]{8}$/.test(q))) {
      throw new HelloError(`quantize must be null or 8 lowercase hex digits, got ${short(q)}`);
    }
    quantize = q ?? "";
  }
  return { version, channels: chans, quantize, limits: own(v, "limits") ? limits(v.limits) : null };
}

// ------------------------------------------------------------------ comparing

/** JSON spelling, every unprintable character escaped (a label must not break a log line). */
function js(v) {
  return JSON.stringify(v).replace(/[\p{C}\p{Zl}\p{Zp}]|(?! )\p{Zs}/gu, (ch) => `\\u${ch.codePointAt(0).toString(16).padStart(4, "0")}`);
}

function channelDiffs(ours, theirs) {
  if (!theirs) return [`channel ${ours.id} ${js(ours.label)}: missing on the peer`];
  if (!ours) return [`channel ${theirs.id} ${js(theirs.label)}: missing on this side`];
  const out = [];
  for (const attr of ["label", "ordered", "max_retransmits", "max_packet_lifetime_ms"]) {
    if (ours[attr] !== theirs[attr]) out.push(`channel ${ours.id} ${js(ours.label)}: ${attr} ${js(ours[attr])} vs ${js(theirs[attr])}`);
  }
  return out;
}

/** What differs, one line each, ours first ("... ordered true vs false"). */
export function differences(ours, theirs) {
  const out = [];
  if (ours.version !== theirs.version) out.push(`protocol version ${ours.version} vs ${theirs.version}`);
  const mine = new Map(ours.channels.map((c) => [c.id, c]));
  const other = new Map(theirs.channels.map((c) => [c.id, c]));
  const ids = [...new Set([...mine.keys(), ...other.keys()])].sort((a, b) => a - b);
  for (const id of ids) out.push(...channelDiffs(mine.get(id), other.get(id)));
  if (ours.quantize !== null && theirs.quantize !== null && ours.quantize !== theirs.quantize) {
    out.push(`snapshot_quantize: hash ${ours.quantize || "none"} vs ${theirs.quantize || "none"}`);
  }
  if (ours.limits !== null && theirs.limits !== null) {
    for (const name of LIMIT_NAMES) {
      if (own(ours.limits, name) && own(theirs.limits, name) && ours.limits[name] !== theirs.limits[name]) {
        out.push(`limits.${name}: ${ours.limits[name]} vs ${theirs.limits[name]}`);
      }
    }
  }
  return out;
}

/** One bounded line for PeerLost.detail. */
export function describe(diffs) {
  let text = diffs.slice(0, MAX_DIFFERENCES).join("; ");
  if (diffs.length > MAX_DIFFERENCES) text += `; and ${diffs.length - MAX_DIFFERENCES} more`;
  text = `this side vs the peer: ${text}`;
  return text.length <= MAX_DETAIL_CHARS ? text : `${text.slice(0, MAX_DETAIL_CHARS - 3)}...`;
}

/** Judge the hello in an offer's/answer's data: {status: match|absent|mismatch|invalid, detail}. */
export function checkRemote(ours, data) {
  if (!isObject(data) || !own(data, HELLO_KEY) || data[HELLO_KEY] === null) return { status: "absent", detail: "" };
  let theirs;
  try {
    theirs = parseHello(data[HELLO_KEY]);
  } catch (err) {
    if (!(err instanceof HelloError)) throw err;
    return { status: "invalid", detail: `invalid hello from the peer: ${err.message}` };
  }
  const diffs = differences(ours, theirs);
  return diffs.length ? { status: "mismatch", detail: describe(diffs) } : { status: "match", detail: "" };
}

/** The data of the "bye" signal that refuses the peer's configuration. */
export function mismatchData(ours, detail) {
  return { reason: MISMATCH, detail: detail.slice(0, MAX_DETAIL_CHARS), [HELLO_KEY]: serializeHello(ours) };
}

/** Our account of a peer's "bye" signal: null unless it says "mismatch"; the differences
 *  are recomputed from its attached hello, else its detail is quoted (printable, cut). */
export function mismatchDetail(ours, data) {
  if (!isObject(data) || data.reason !== MISMATCH) return null;
  let diffs = [];
  try {
    diffs = differences(ours, parseHello(data[HELLO_KEY]));
  } catch (err) {
    if (!(err instanceof HelloError)) throw err;
  }
  if (diffs.length) return describe(diffs);
  const said = typeof data.detail === "string" ? data.detail.slice(0, MAX_DETAIL_CHARS) : "no detail";
  const clean = said.replace(/[\p{C}\p{Zl}\p{Zp}]|(?! )\p{Zs}/gu, "?");
  return `the peer refused our configuration: ${clean || "no detail"}`;
}
