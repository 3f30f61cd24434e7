// Delta snapshots (docs/STATE_SYNC.md 4): receiver, sender, quantization, fragments.
// Entities are a Map<id, fields> with id an integer (number/BigInt) or a string, and
// fields a plain object {name: value}. A plain object of entities is accepted on send
// (its keys are strings: use a Map for integer ids).

import { DEFAULT_LIMITS, DecodeError, EncodeError, Float, Int, encode } from "./msgpack.js";

const RING = 64;
const MAX_FRAGMENTS = 128;

function entriesOf(x, what) {
  if (x instanceof Map) return [...x.entries()];
  if (x !== null && typeof x === "object" && !Array.isArray(x)) return Object.entries(x);
  throw new DecodeError(`${what} must be a map`);
}

/** Round half to even, like Python's round(). */
export function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function countValue(v) {
  // A field counts 1; an array/map inside it one more and one per element, all levels.
  if (v instanceof Map) {
    let n = 1;
    for (const x of v.values()) n += countValue(x);
    return n;
  }
  if (Array.isArray(v)) return v.reduce((n, x) => n + countValue(x), 1);
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !(v instanceof Float) && !(v instanceof Int)) {
    return Object.values(v).reduce((n, x) => n + countValue(x), 1);
  }
  return 1;
}

/** Check a snapshot against the limits (4.6); ``Err`` is the error class to throw. */
export function checkEntities(state, limits = DEFAULT_LIMITS, Err = DecodeError) {
  if (state.size > limits.maxSnapshotEntities) {
    throw new Err(`snapshot has more than maxSnapshotEntities=${limits.maxSnapshotEntities} entities`);
  }
  let fields = 0;
  for (const [id, ent] of state) {
    const idOk = typeof id === "string" || typeof id === "bigint" || Number.isSafeInteger(id);
    if (!idOk) throw new Err(`entity id ${String(id)} is not an integer or a string`);
    if (ent === null || typeof ent !== "object" || Array.isArray(ent) || ent instanceof Map) {
      throw new Err(`entity ${String(id)}: fields must be a plain object`);
    }
    const names = Object.keys(ent);
    if (names.length > limits.maxEntityFields) {
      throw new Err(`entity ${String(id)} has more than maxEntityFields=${limits.maxEntityFields} fields`);
    }
    for (const k of names) fields += countValue(ent[k]);
  }
  if (fields > limits.maxSnapshotFields) {
    throw new Err(`snapshot has more than maxSnapshotFields=${limits.maxSnapshotFields} fields`);
  }
  const size = encode(state, { ...limits, maxContainerLen: Infinity }).length;
  if (size > limits.maxSnapshotBytes) {
    throw new Err(`snapshot of ${size} B over maxSnapshotBytes=${limits.maxSnapshotBytes}`);
  }
}

function toMap(x, what) {
  return new Map(entriesOf(x, what));
}

function fieldsObject(x, what) {
  if (x === null || typeof x !== "object" || Array.isArray(x) || x instanceof Map) {
    throw new DecodeError(`${what}: fields must be a map with str keys`);
  }
  return x;
}

/** Reconstructs a peer's snapshots; one per sending peer. */
export class SnapshotReceiver {
  constructor({ quantize = null, limits = DEFAULT_LIMITS } = {}) {
    this.quantize = quantize ? new Map(Object.entries(quantize)) : new Map();
    this.limits = limits;
    this.ring = new Array(RING).fill(null); // {seq, state}
    this.pending = new Map(); // frame -> {count, parts: Map<index, Map>}
  }

  /**
   * Decode the payload of SNAPSHOT ``seq``: [frame, entities] when a snapshot is
   * complete (dequantized copy), null for a fragment of an incomplete one.
   * Throws DecodeError (drop, withdraw the ack) or DeltaBaselineMissing (drop silently).
   */
  receive(seq, payload) {
    if (payload === null || typeof payload !== "object" || payload instanceof Map || Array.isArray(payload)) {
      throw new DecodeError("snapshot payload must be a map with str keys");
    }
    for (const k of Object.keys(payload)) {
      if (!["e", "b", "r", "x", "f"].includes(k)) throw new DecodeError(`snapshot payload: unknown key ${k}`);
    }
    const e = toMap(payload.e ?? null, "e");
    if (e.size > this.limits.maxSnapshotEntities) throw new DecodeError("too many entities in e");
    let state;
    let frame = seq;
    if (payload.f !== undefined) {
      const done = this._fragment(seq, payload, e);
      if (done === null) return null;
      [frame, state] = done;
    } else if (payload.b === undefined) {
      if (payload.r !== undefined || payload.x !== undefined) throw new DecodeError("full snapshot with r/x");
      state = new Map([...e].map(([id, f]) => [id, { ...fieldsObject(f, "e") }]));
    } else {
      state = this._delta(seq, payload, e);
    }
    checkEntities(state, this.limits);
    this.ring[frame % RING] = { seq: frame, state };
    return [frame, this._dequantized(state)];
  }

  _fragment(seq, payload, e) {
    const f = payload.f;
    if (!Array.isArray(f) || f.length !== 2 || payload.b !== undefined || payload.r !== undefined || payload.x !== undefined) {
      throw new DecodeError("bad fragment header f");
    }
    const [index, count] = f;
    if (!Number.isInteger(index) || !Number.isInteger(count) || count < 2 || count > MAX_FRAGMENTS || index < 0 || index >= count) {
      throw new DecodeError(`bad fragment [${index}, ${count}]`);
    }
    const frame = (seq - index) & 0xffff;
    let p = this.pending.get(frame);
    if (!p) {
      p = { count, parts: new Map() };
      this.pending.set(frame, p);
      if (this.pending.size > 2) this.pending.delete(this.pending.keys().next().value);
    }
    if (p.count !== count || p.parts.has(index)) {
      this.pending.delete(frame);
      throw new DecodeError("fragments disagree: partial snapshot dropped");
    }
    p.parts.set(index, e);
    if (p.parts.size < count) return null;
    this.pending.delete(frame);
    const state = new Map();
    for (const part of p.parts.values()) {
      for (const [id, fields] of part) {
        if (state.has(id)) throw new DecodeError(`entity ${String(id)} in two fragments`);
        state.set(id, { ...fieldsObject(fields, "e") });
      }
    }
    return [frame, state];
  }

  _delta(seq, payload, e) {
    const b = payload.b;
    if (!Number.isInteger(b) || b < 0 || b > 0xffff) throw new DecodeError("b must be a u16");
    const slot = this.ring[b % RING];
    if (slot === null || slot.seq !== b) throw new DeltaBaselineMissing(`baseline ${b} not held`);
    const state = new Map(slot.state);
    for (const id of payload.r ?? []) {
      if (!state.delete(id)) throw new DecodeError(`r: unknown entity ${String(id)}`);
    }
    for (const [id, names] of entriesOf(payload.x ?? {}, "x")) {
      const ent = state.get(id);
      if (ent === undefined || !Array.isArray(names)) throw new DecodeError(`x: unknown entity ${String(id)}`);
      const copy = { ...ent };
      for (const n of new Set(names)) {
        if (typeof n !== "string" || !Object.hasOwn(copy, n)) throw new DecodeError(`x: unknown field ${typeof n === "string" ? n : typeof n}`);
        delete copy[n];
      }
      state.set(id, copy);
    }
    for (const [id, fields] of e) {
      const base = state.get(id);
      const copy = base === undefined ? {} : { ...base };
      for (const [name, v] of Object.entries(fieldsObject(fields, "e"))) {
        if (this.quantize.has(name) && base !== undefined && Object.hasOwn(base, name)) {
          if (!Number.isInteger(copy[name]) || !Number.isInteger(v)) throw new DecodeError(`quantized ${name} not an int`);
          copy[name] = copy[name] + v;
        } else copy[name] = v;
      }
      state.set(id, copy);
    }
    return state;
  }

  _dequantized(state) {
    if (this.quantize.size === 0) return new Map([...state].map(([id, f]) => [id, { ...f }]));
    const out = new Map();
    for (const [id, f] of state) {
      const copy = { ...f };
      for (const [name, step] of this.quantize) if (typeof copy[name] === "number") copy[name] *= step;
      out.set(id, copy);
    }
    return out;
  }
}

/** A delta against a baseline the receiver no longer holds: drop, never acked. */
export class DeltaBaselineMissing extends DecodeError {}

function sameValue(a, b) {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) {
    // NaN !== NaN: a NaN field is resent every time, as in Python.
    return a === b && typeof a === typeof b;
  }
  const ea = encode(a, { ...DEFAULT_LIMITS, maxContainers: Infinity });
  const eb = encode(b, { ...DEFAULT_LIMITS, maxContainers: Infinity });
  return ea.length === eb.length && ea.every((x, i) => x === eb[i]);
}

/** Builds full/delta snapshot payloads for one receiving peer (4.3), fragments (4.7). */
export class SnapshotSender {
  constructor({ quantize = null, limits = DEFAULT_LIMITS } = {}) {
    this.quantize = quantize ? new Map(Object.entries(quantize)) : new Map();
    this.limits = limits;
    this.ring = new Map(); // frame -> {state, waiting: Set<seq>}
    this.bySeq = new Map(); // seq -> frame
    this.baseline = null; // newest frame fully acked
  }

  /** Entities (Map or object) -> the integer/quantized form that is compared and stored. */
  prepare(entities) {
    const state = new Map();
    for (const [id, fields] of entities instanceof Map ? entities : Object.entries(entities)) {
      if (fields === null || typeof fields !== "object" || Array.isArray(fields) || fields instanceof Map) {
        throw new EncodeError(`entity ${String(id)}: fields must be a plain object`);
      }
      const copy = {};
      for (const [name, v] of Object.entries(fields)) {
        const step = this.quantize.get(name);
        if (step === undefined) copy[name] = v;
        else {
          const x = Number(v);
          if (!Number.isFinite(x)) throw new EncodeError(`quantized field ${name} must be a finite number`);
          const n = roundHalfEven(x / step);
          // Python allows |n| <= 2**62; a JS number is exact only to 2**53 (a float beyond).
          if (!Number.isSafeInteger(n)) throw new EncodeError(`quantized field ${name}: ${x} / ${step} is out of range`);
          copy[name] = n;
        }
      }
      state.set(id, copy);
    }
    checkEntities(state, this.limits, EncodeError);
    return state;
  }

  /**
   * Payloads for the packets starting at sequence ``seq``: one (full or delta) or the
   * fragments of a full snapshot over ``maxStateBytes``. ``headerBytes`` is the
   * envelope overhead to budget for.
   */
  encode(entities, seq, headerBytes = 22) {
    const state = this.prepare(entities);
    const base = this._usableBaseline(seq);
    let payloads;
    if (base !== null) payloads = [this._delta(base, state)];
    else payloads = this._full(state, headerBytes);
    this._remember(seq, state, payloads.length);
    return payloads;
  }

  _usableBaseline(seq) {
    if (this.baseline === null) return null;
    const d = (seq - this.baseline) & 0xffff;
    const held = this.ring.get(this.baseline);
    return held && d > 0 && d < RING ? this.baseline : null;
  }

  _delta(b, state) {
    const base = this.ring.get(b).state;
    const e = new Map();
    const r = [];
    const x = new Map();
    for (const id of base.keys()) if (!state.has(id)) r.push(id);
    for (const [id, fields] of state) {
      const old = base.get(id);
      if (old === undefined) {
        e.set(id, fields);
        continue;
      }
      const changed = {};
      for (const [name, v] of Object.entries(fields)) {
        if (Object.hasOwn(old, name) && sameValue(old[name], v)) continue;
        changed[name] = this.quantize.has(name) && Object.hasOwn(old, name) ? v - old[name] : v;
      }
      if (Object.keys(changed).length) e.set(id, changed);
      const gone = Object.keys(old).filter((n) => !Object.hasOwn(fields, n));
      if (gone.length) x.set(id, gone);
    }
    const payload = { b, e };
    if (r.length) payload.r = r;
    if (x.size) payload.x = x;
    return payload;
  }

  _full(state, headerBytes) {
    const whole = { e: state };
    if (encode(whole, this.limits).length + headerBytes <= this.limits.maxStateBytes) return [whole];
    const parts = [];
    let cur = new Map();
    let size = 0;
    for (const [id, fields] of state) {
      const n = encode(new Map([[id, fields]]), this.limits).length;
      if (cur.size && size + n + headerBytes + 12 > this.limits.maxStateBytes) {
        parts.push(cur);
        (cur = new Map()), (size = 0);
      }
      cur.set(id, fields);
      size += n;
    }
    if (cur.size) parts.push(cur);
    if (parts.length === 1) return [whole];
    if (parts.length > MAX_FRAGMENTS) throw new EncodeError(`snapshot needs more than ${MAX_FRAGMENTS} fragments`);
    return parts.map((e, i) => ({ e, f: [i, parts.length] }));
  }

  _remember(seq, state, count) {
    const waiting = new Set();
    for (let i = 0; i < count; i++) {
      const s = (seq + i) & 0xffff;
      waiting.add(s);
      this.bySeq.set(s, seq);
    }
    this.ring.delete(seq); // a wrapped sequence: re-insert so eviction stays oldest first
    this.ring.set(seq, { state, waiting });
    while (this.ring.size > RING) {
      const old = this.ring.keys().next().value;
      for (const s of this.ring.get(old).waiting) this.bySeq.delete(s);
      this.ring.delete(old);
      if (this.baseline === old) this.baseline = null;
    }
    if (this.bySeq.size > 4 * RING) this.bySeq.delete(this.bySeq.keys().next().value);
  }

  /** One of our packet sequences was acked (non-snapshot sequences are ignored). */
  onAck(seq) {
    const frame = this.bySeq.get(seq);
    if (frame === undefined) return;
    this.bySeq.delete(seq);
    const rec = this.ring.get(frame);
    if (!rec) return;
    rec.waiting.delete(seq);
    if (rec.waiting.size === 0 && (this.baseline === null || seqGreaterThan16(frame, this.baseline))) {
      this.baseline = frame;
    }
  }
}

function seqGreaterThan16(a, b) {
  const d = (a - b) & 0xffff;
  return d > 0 && d < 32768;
}
