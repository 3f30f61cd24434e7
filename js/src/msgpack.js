// Typed msgpack codec for netcode's wire (docs/PROTOCOL.md 2.3, 2.5, 2.11).
//
// Why not a general msgpack library: JavaScript has one number type, so a general
// library sends -2.0 as the int -2, cannot produce int map keys (a Map becomes {}),
// decodes int keys as strings (colliding with string keys), loses ints beyond 2^53,
// turns Date into an ext type and undefined into nil. netcode's peers (Python) see all
// of these as different values or drop the packet. This codec makes the mapping
// explicit and refuses what netcode would refuse, at the send call, with the same
// limits as netcode.config.Limits.
//
// JS -> msgpack: integral safe number -> int; other number -> float64; Float(x) ->
// float64 always; Int(x) / BigInt -> int (64-bit range); string -> str; boolean;
// null -> nil; Uint8Array / ArrayBuffer -> bin; Array -> array; plain object -> map
// with str keys; Map -> map with str / integer / BigInt keys. Everything else
// (undefined, Date, functions, symbols, class instances, ext) throws EncodeError.
// msgpack -> JS: int -> number when safe, else BigInt; float -> number; str, bin
// (Uint8Array), nil (null), bool, array; a map with only str keys -> plain object
// (null prototype); a map with any int key -> Map.

export class NetcodeError extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}
/** A value netcode refuses to send (the send call throws it; nothing is sent). */
export class EncodeError extends NetcodeError {}
/** Bytes from the network that break the protocol (the packet is dropped and counted). */
export class DecodeError extends NetcodeError {}

/** The defaults of netcode.config.Limits; both peers must use the same values. */
export const DEFAULT_LIMITS = Object.freeze({
  maxPacketBytes: 65_536,
  maxStateBytes: 1_160,
  maxEventBytes: 1_048_576,
  maxDepth: 16,
  maxContainerLen: 4_096,
  maxStrLen: 16_384,
  maxContainers: 8_192,
  maxSnapshotEntities: 1_024,
  maxEntityFields: 256,
  maxSnapshotFields: 4_096,
  maxSnapshotBytes: 65_000,
});

/** A number that always travels as a msgpack float64 (even 2.0). */
export class Float {
  constructor(value) {
    if (typeof value !== "number") throw new EncodeError(`Float(${String(value)}): not a number`);
    this.value = value;
    Object.freeze(this);
  }
  valueOf() {
    return this.value;
  }
}
/** An integer that always travels as a msgpack int; refuses fractions and the unsafe range. */
export class Int {
  constructor(value) {
    const ok =
      (typeof value === "number" && Number.isSafeInteger(value)) || typeof value === "bigint";
    if (!ok) throw new EncodeError(`Int(${String(value)}): not a safe integer or BigInt`);
    this.value = value;
    Object.freeze(this);
  }
  valueOf() {
    return Number(this.value);
  }
}

const I64_MIN = -(2n ** 63n);
const U64_MAX = 2n ** 64n - 1n;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

// ------------------------------------------------------------------------ encoding

class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }
  ensure(n) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  byte(b) {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }
  bytes(arr) {
    this.ensure(arr.length);
    this.buf.set(arr, this.pos);
    this.pos += arr.length;
  }
  u16(v) {
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
  }
  u32(v) {
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }
  result() {
    return this.buf.slice(0, this.pos);
  }
}

function isPlainObject(v) {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function writeInt(w, v) {
  // Same shortest forms as Python's msgpack: unsigned for v >= 0, signed below.
  if (typeof v === "number" && v >= 0 && v < 2 ** 32) {
    if (v < 128) w.byte(v);
    else if (v < 256) w.byte(0xcc), w.byte(v);
    else if (v < 65536) w.byte(0xcd), w.u16(v);
    else w.byte(0xce), w.u32(v);
    return;
  }
  if (typeof v === "number" && v < 0 && v >= -(2 ** 31)) {
    if (v >= -32) w.byte(v & 0xff);
    else if (v >= -128) w.byte(0xd0), w.byte(v & 0xff);
    else if (v >= -32768) w.byte(0xd1), w.u16(v & 0xffff);
    else w.byte(0xd2), w.u32(v >>> 0);
    return;
  }
  const b = BigInt(v);
  if (b < I64_MIN || b > U64_MAX) throw new EncodeError(`int ${b} out of the msgpack 64-bit range`);
  if (b >= 0n && b < 2n ** 32n) return writeInt(w, Number(b));
  if (b < 0n && b >= -(2n ** 31n)) return writeInt(w, Number(b));
  w.ensure(9);
  if (b >= 0n) {
    w.buf[w.pos] = 0xcf;
    w.view.setBigUint64(w.pos + 1, b);
  } else {
    w.buf[w.pos] = 0xd3;
    w.view.setBigInt64(w.pos + 1, b);
  }
  w.pos += 9;
}

function writeFloat(w, v) {
  w.ensure(9);
  w.buf[w.pos] = 0xcb;
  w.view.setFloat64(w.pos + 1, v);
  w.pos += 9;
}

function hasLoneSurrogate(s) {
  if (typeof s.isWellFormed === "function") return !s.isWellFormed();
  return /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

function writeStr(w, s, limits) {
  const data = utf8.encode(s);
  if (s.length > limits.maxStrLen || data.length > limits.maxStrLen) {
    throw new EncodeError(`str longer than maxStrLen=${limits.maxStrLen}`);
  }
  if (hasLoneSurrogate(s)) {
    throw new EncodeError("str is not valid UTF-8 (lone surrogate)");
  }
  const n = data.length;
  if (n < 32) w.byte(0xa0 | n);
  else if (n < 256) w.byte(0xd9), w.byte(n);
  else if (n < 65536) w.byte(0xda), w.u16(n);
  else w.byte(0xdb), w.u32(n);
  w.bytes(data);
}

function writeBin(w, data) {
  const n = data.length;
  if (n < 256) w.byte(0xc4), w.byte(n);
  else if (n < 65536) w.byte(0xc5), w.u16(n);
  else w.byte(0xc6), w.u32(n);
  w.bytes(data);
}

function writeHeader(w, n, fix, b16, b32) {
  if (n < 16) w.byte(fix | n);
  else if (n < 65536) w.byte(b16), w.u16(n);
  else w.byte(b32), w.u32(n);
}

function describe(v) {
  if (v === undefined) return "undefined (use null for nil)";
  if (v instanceof Date) return "Date (send a number, e.g. date.getTime())";
  if (typeof v === "object") return `${v.constructor?.name ?? "object"} instance`;
  return typeof v;
}

function writeKey(w, k, limits) {
  if (typeof k === "string") return writeStr(w, k, limits);
  if (typeof k === "number" && Number.isSafeInteger(k)) return writeInt(w, k);
  if (typeof k === "bigint") return writeInt(w, k);
  if (k instanceof Int) return writeInt(w, k.value);
  throw new EncodeError(`map keys must be str or integer, got ${describe(k)} ${String(k)}`);
}

/** Encode ``value`` (see the mapping at the top); throws EncodeError over ``limits``. */
export function encode(value, limits = DEFAULT_LIMITS) {
  const w = new Writer();
  const state = { containers: 0 };
  writeValue(w, value, 0, limits, state);
  return w.result();
}

function enterContainer(len, depth, limits, state) {
  if (depth >= limits.maxDepth) {
    throw new EncodeError(`payload nested deeper than maxDepth=${limits.maxDepth}`);
  }
  if (len > limits.maxContainerLen) {
    throw new EncodeError(`container longer than maxContainerLen=${limits.maxContainerLen}`);
  }
  if (++state.containers > limits.maxContainers) {
    throw new EncodeError(`payload has more than maxContainers=${limits.maxContainers}`);
  }
}

function writeValue(w, v, depth, limits, state) {
  switch (typeof v) {
    case "number":
      return Number.isSafeInteger(v) && !Object.is(v, -0) ? writeInt(w, v) : writeFloat(w, v);
    case "bigint":
      return writeInt(w, v);
    case "string":
      return writeStr(w, v, limits);
    case "boolean":
      return w.byte(v ? 0xc3 : 0xc2);
    case "object":
      return writeObject(w, v, depth, limits, state);
    default:
      throw new EncodeError(`cannot send ${describe(v)}`);
  }
}

function writeObject(w, v, depth, limits, state) {
  if (v === null) return w.byte(0xc0);
  if (v instanceof Float) return writeFloat(w, v.value);
  if (v instanceof Int) return writeInt(w, v.value);
  if (v instanceof Uint8Array) return writeBin(w, v);
  if (v instanceof ArrayBuffer) return writeBin(w, new Uint8Array(v));
  if (Array.isArray(v)) {
    enterContainer(v.length, depth, limits, state);
    writeHeader(w, v.length, 0x90, 0xdc, 0xdd);
    for (const item of v) writeValue(w, item, depth + 1, limits, state);
    return;
  }
  if (v instanceof Map) {
    enterContainer(v.size, depth, limits, state);
    writeHeader(w, v.size, 0x80, 0xde, 0xdf);
    for (const [k, item] of v) {
      writeKey(w, k, limits);
      writeValue(w, item, depth + 1, limits, state);
    }
    return;
  }
  if (!isPlainObject(v)) throw new EncodeError(`cannot send ${describe(v)}`);
  const keys = Object.keys(v);
  enterContainer(keys.length, depth, limits, state);
  writeHeader(w, keys.length, 0x80, 0xde, 0xdf);
  for (const k of keys) {
    writeStr(w, k, limits);
    writeValue(w, v[k], depth + 1, limits, state);
  }
}

// ------------------------------------------------------------------------ decoding

class Reader {
  constructor(bytes, limits) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
    this.limits = limits;
    this.containersLeft = limits.maxContainers + 1; // +1: the envelope array
  }
  need(n) {
    if (this.pos + n > this.bytes.length) throw new DecodeError("bad msgpack: truncated");
  }
  u8() {
    this.need(1);
    return this.bytes[this.pos++];
  }
  take(fn, n) {
    this.need(n);
    const v = fn.call(this.view, this.pos);
    this.pos += n;
    return v;
  }
  slice(n) {
    this.need(n);
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

function bigToJs(b) {
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(b)
    : b;
}

function readStr(r, n) {
  if (n > r.limits.maxStrLen) throw new DecodeError(`str longer than maxStrLen=${r.limits.maxStrLen}`);
  try {
    return utf8Strict.decode(r.slice(n));
  } catch {
    throw new DecodeError("bad msgpack: str is not valid UTF-8");
  }
}

function readLen(r, b) {
  // [kind, length] for containers, strings and bins by their first byte.
  if (b >= 0x80 && b <= 0x8f) return ["map", b & 0x0f];
  if (b >= 0x90 && b <= 0x9f) return ["array", b & 0x0f];
  if (b >= 0xa0 && b <= 0xbf) return ["str", b & 0x1f];
  const sizes = {
    0xc4: ["bin", 1], 0xc5: ["bin", 2], 0xc6: ["bin", 4],
    0xd9: ["str", 1], 0xda: ["str", 2], 0xdb: ["str", 4],
    0xdc: ["array", 2], 0xdd: ["array", 4], 0xde: ["map", 2], 0xdf: ["map", 4],
  };
  const s = sizes[b];
  if (!s) return null;
  const n = s[1] === 1 ? r.u8() : s[1] === 2 ? r.take(DataView.prototype.getUint16, 2) : r.take(DataView.prototype.getUint32, 4);
  return [s[0], n];
}

function readScalar(r, b) {
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 256;
  const dv = DataView.prototype;
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xca: return r.take(dv.getFloat32, 4);
    case 0xcb: return r.take(dv.getFloat64, 8);
    case 0xcc: return r.u8();
    case 0xcd: return r.take(dv.getUint16, 2);
    case 0xce: return r.take(dv.getUint32, 4);
    case 0xcf: return bigToJs(r.take(dv.getBigUint64, 8));
    case 0xd0: return r.take(dv.getInt8, 1);
    case 0xd1: return r.take(dv.getInt16, 2);
    case 0xd2: return r.take(dv.getInt32, 4);
    case 0xd3: return bigToJs(r.take(dv.getBigInt64, 8));
    default:
      throw new DecodeError(`bad msgpack: type byte 0x${b.toString(16)} (ext or reserved) not allowed`);
  }
}

function readValue(r, depth) {
  const b = r.u8();
  const len = readLen(r, b);
  if (len === null) {
    const v = readScalar(r, b);
    // Envelope fields (depth 0 under an envelope root): keep float-ness visible, so an
    // int field sent as a float is refused as Python refuses it.
    return r.markFloats && depth === 0 && (b === 0xca || b === 0xcb) ? new Float(v) : v;
  }
  const [kind, n] = len;
  if (kind === "str") return readStr(r, n);
  if (kind === "bin") return r.slice(n);
  // depth counts from the payload root (the envelope array is depth -1).
  if (depth >= r.limits.maxDepth) throw new DecodeError(`nested deeper than maxDepth=${r.limits.maxDepth}`);
  if (n > r.limits.maxContainerLen) {
    throw new DecodeError(`container longer than maxContainerLen=${r.limits.maxContainerLen}`);
  }
  if (--r.containersLeft < 0) {
    throw new DecodeError(`more than maxContainers=${r.limits.maxContainers} arrays/maps`);
  }
  if (kind === "array") {
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = readValue(r, depth + 1);
    return out;
  }
  return readMap(r, n, depth);
}

function readMap(r, n, depth) {
  const keys = new Array(n);
  const values = new Array(n);
  let intKeys = false;
  for (let i = 0; i < n; i++) {
    const k = readValue(r, depth + 1);
    if (typeof k === "number" || typeof k === "bigint") {
      if (typeof k === "number" && !Number.isInteger(k)) throw new DecodeError("map keys must be str or int, got float");
      intKeys = true;
    } else if (typeof k !== "string") {
      throw new DecodeError(`map keys must be str or int, got ${k === null ? "nil" : typeof k}`);
    }
    keys[i] = k;
    values[i] = readValue(r, depth + 1);
  }
  if (intKeys) return new Map(keys.map((k, i) => [k, values[i]]));
  const obj = Object.create(null);
  for (let i = 0; i < n; i++) obj[keys[i]] = values[i];
  return obj;
}

/**
 * Decode one msgpack value from ``bytes`` (Uint8Array or ArrayBuffer); throws
 * DecodeError for anything off-spec: trailing bytes, ext types, invalid UTF-8,
 * non str/int map keys, anything over ``limits``. ``rootDepth`` -1 means the root
 * is an envelope array that the depth limit does not count.
 */
export function decode(bytes, limits = DEFAULT_LIMITS, rootDepth = 0) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const r = new Reader(data, limits);
  if (rootDepth === 0) r.containersLeft = limits.maxContainers;
  r.markFloats = rootDepth === -1;
  const value = readValue(r, rootDepth);
  if (r.pos !== data.length) throw new DecodeError("bad msgpack: trailing bytes");
  return value;
}

/**
 * Offset of the element after the first ``skip`` elements inside the (already
 * validated) envelope array ``bytes``: where its payload starts.
 */
export function payloadOffset(bytes, skip) {
  const r = new Reader(bytes, { ...DEFAULT_LIMITS, maxContainers: Infinity });
  const b = r.u8();
  if (readLen(r, b) === null) throw new DecodeError("not an envelope array");
  for (let i = 0; i < skip; i++) readValue(r, 0);
  return r.pos;
}

/** Hex helpers for tests and debugging. */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
export function fromHex(hex) {
  const clean = hex.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}
