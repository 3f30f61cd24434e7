// Drawing remote entities smoothly in the past: netcode/protocol/interpolation.py's
// InterpolationBuffer, same policy, defaults and limits (STATE_SYNC.md 5):
// lerp between the two snapshots around rt = now - delay (clamped; teleports snap),
// extrapolate at most maxExtrapolation past the newest (never across a teleport nor
// further than teleport[field]), refuse and count bad times and NaN/inf entities.
// Python's min()/max() are spelled out where a NaN or a tie could make JS differ.

import { EncodeError, NetcodeError } from "./msgpack.js";

/** A bad setting or a time argument of the game (not from the network). */
export class ConfigError extends NetcodeError {}

/** Two snapshot intervals plus twice the measured jitter, in seconds. */
export function recommendedDelay(snapshotRate, jitterMs = 0) {
  return 2 / snapshotRate + (2 * Math.max(0, jitterMs)) / 1000;
}

/** ``v`` as a finite number, or null (not a number, NaN/inf, a bool; BigInt converted). */
function finite(v) {
  const f = typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : NaN;
  return Number.isFinite(f) ? f : null;
}

function setting(name, value, positive = false) {
  const f = finite(value);
  if (f === null || f < 0 || (positive && f === 0)) {
    throw new ConfigError(`${name} must be a finite number ${positive ? "> 0" : ">= 0"}, got ${value}`);
  }
  return f;
}

function time(name, value) {
  const f = finite(value);
  if (f === null) throw new ConfigError(`${name} must be a finite number of seconds, got ${value}`);
  return f;
}

const pyMax = (a, b) => (b > a ? b : a); // Python's max(a, b): a unless b is greater
const pyMin = (a, b) => (b < a ? b : a);

/** ``v0 -> v1`` at ``alpha`` in [0, 1], clamped to the two values, never overflowing. */
export function lerpValue(v0, v1, alpha) {
  const d = v1 - v0;
  const x = Number.isFinite(d) ? v0 + d * alpha : v0 * (1 - alpha) + v1 * alpha;
  const [lo, hi] = v0 <= v1 ? [v0, v1] : [v1, v0];
  return pyMin(hi, pyMax(lo, x));
}

/** Index of the first time > t (``right``) or >= t in the sorted ``times``. */
function bisect(times, t, right) {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (right ? times[mid] <= t : times[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const own = (obj, k) => (Object.hasOwn(obj, k) ? obj[k] : undefined);
const copy = (frame) => new Map([...frame].map(([id, f]) => [id, { ...f }]));

export class InterpolationBuffer {
  constructor({
    delay = null, snapshotRate = 60, maxExtrapolation = 0.1, teleport = null, fields = null,
    capacity = 64, minSpacing = null,
  } = {}) {
    const rate = setting("snapshotRate", snapshotRate, true);
    if (!Number.isInteger(capacity) || capacity < 2) throw new ConfigError(`capacity must be an int >= 2, got ${capacity}`);
    this._delay = setting("delay", delay ?? recommendedDelay(rate));
    this._maxExtrapolation = setting("maxExtrapolation", maxExtrapolation);
    // A quarter interval: two snapshots closer than that carry no usable velocity.
    this._minSpacing = setting("minSpacing", minSpacing ?? 0.25 / rate, true);
    this._teleport = new Map(Object.entries(teleport ?? {}).map(([k, v]) => [k, setting(`teleport[${k}]`, v)]));
    this._fields = fields === null ? null : new Set(fields);
    this.capacity = capacity;
    this._times = [];
    this._frames = [];
    this.droppedSnapshots = 0; // pushes refused for their time
    this.droppedEntities = 0; // entities left out of a push for a NaN/inf interpolated field
  }

  get delay() { return this._delay; }
  set delay(v) { this._delay = setting("delay", v); }
  get maxExtrapolation() { return this._maxExtrapolation; }
  set maxExtrapolation(v) { this._maxExtrapolation = setting("maxExtrapolation", v); }
  get minSpacing() { return this._minSpacing; }
  get length() { return this._times.length; }
  get newestTime() { return this._times.length ? this._times[this._times.length - 1] : null; }

  /** Newest snapshot time minus render time (< 0: the buffer ran dry); null if empty. */
  lag(now) {
    const rt = this._renderTime(now);
    return this._times.length ? this._times[this._times.length - 1] - rt : null;
  }

  /** Add the snapshot taken at ``t`` (seconds, the clock of ``now``); false if refused. */
  push(t, entities) {
    if (typeof t !== "number" && typeof t !== "bigint") throw new ConfigError(`snapshot time must be a number of seconds, got ${typeof t}`);
    const frame = this._frame(entities); // first: malformed entities throw even if t is refused
    const i = this._slot(Number(t));
    if (i === null) return this.droppedSnapshots++, false;
    this._times.splice(i, 0, Number(t));
    this._frames.splice(i, 0, frame);
    if (this._times.length > this.capacity) this._times.shift(), this._frames.shift();
    return true;
  }

  _slot(t) {
    const times = this._times;
    if (!Number.isFinite(t)) return null;
    const i = bisect(times, t, false);
    if (i > 0 && t - times[i - 1] < this._minSpacing) return null;
    if (i < times.length && times[i] - t < this._minSpacing) return null;
    if (i === 0 && times.length >= this.capacity) return null;
    return i;
  }

  _frame(entities) {
    const isMap = entities instanceof Map;
    if (!isMap && (entities === null || typeof entities !== "object" || Array.isArray(entities))) {
      throw new EncodeError(`entities must be a map id -> fields, got ${entities === null ? "null" : typeof entities}`);
    }
    const frame = new Map();
    for (const [id, fields] of isMap ? entities : Object.entries(entities)) {
      if (fields === null || typeof fields !== "object" || Array.isArray(fields) || fields instanceof Map) {
        throw new EncodeError(`entity ${String(id).slice(0, 60)}: fields must be an object`);
      }
      if (this._hasBadNumber(fields)) this.droppedEntities++;
      else frame.set(id, { ...fields });
    }
    return frame;
  }

  _hasBadNumber(fields) {
    for (const [name, v] of Object.entries(fields)) {
      if (this._fields !== null && !this._fields.has(name)) continue;
      if (typeof v === "number" && !Number.isFinite(v)) return true;
    }
    return false;
  }

  clear() {
    this._times = [];
    this._frames = [];
  }

  /** The entities to draw at local time ``now`` (rendered at ``now - delay``). */
  sample(now) {
    return this.sampleAt(this._renderTime(now));
  }

  _renderTime(now) {
    const rt = time("now", now) - this._delay;
    if (!Number.isFinite(rt)) throw new ConfigError(`now - delay is not finite (now=${now}, delay=${this._delay})`);
    return rt;
  }

  /** The entities as they were at ``renderTime``. */
  sampleAt(renderTime) {
    const rt = time("renderTime", renderTime);
    const times = this._times;
    if (!times.length) return new Map();
    const i = bisect(times, rt, true);
    if (i === 0) return copy(this._frames[0]);
    if (i === times.length) return this._extrapolate(rt);
    const [t0, t1] = [times[i - 1], times[i]];
    const [f0, f1] = [this._frames[i - 1], this._frames[i]];
    let alpha = (rt - t0) / (t1 - t0);
    alpha = Number.isNaN(alpha) ? 0 : pyMin(1, pyMax(0, alpha)); // NaN only for inf/inf
    const out = new Map();
    for (const [id, fields] of f0) {
      const newer = f1.get(id);
      out.set(id, newer === undefined ? { ...fields } : this._lerp(fields, newer, alpha));
    }
    return out;
  }

  _lerp(old, nu, alpha) {
    const out = { ...old };
    for (const [name, v0] of Object.entries(old)) {
      const pair = this._blendPair(name, v0, own(nu, name));
      if (pair !== null) out[name] = lerpValue(pair[0], pair[1], alpha);
    }
    return out;
  }

  /** [v0, v1] as numbers if ``name`` moves smoothly between them, else null. */
  _blendPair(name, v0, v1) {
    if (this._fields !== null && !this._fields.has(name)) return null;
    const f0 = finite(v0);
    const f1 = finite(v1);
    if (f0 === null || f1 === null) return null;
    const limit = this._teleport.get(name);
    if (limit !== undefined && !(Math.abs(f1 - f0) <= limit)) return null; // overflow to inf snaps
    return [f0, f1];
  }

  _extrapolate(rt) {
    const n = this._times.length;
    const last = this._frames[n - 1];
    if (n < 2 || this._maxExtrapolation === 0) return copy(last);
    const [tPrev, tLast, prev] = [this._times[n - 2], this._times[n - 1], this._frames[n - 2]];
    // tLast - tPrev >= minSpacing > 0, so the scale is at most cap / minSpacing.
    const scale = pyMin(rt - tLast, this._maxExtrapolation) / (tLast - tPrev);
    const out = new Map();
    for (const [id, fields] of last) {
      const before = prev.get(id);
      const entity = { ...fields };
      if (before !== undefined) {
        for (const [name, v1] of Object.entries(fields)) {
          const pair = this._blendPair(name, own(before, name), v1);
          if (pair !== null) entity[name] = this._ahead(name, pair[0], pair[1], scale);
        }
      }
      out.set(id, entity);
    }
    return out;
  }

  /** ``v1`` moved ``scale`` times its last step, within the teleport threshold. */
  _ahead(name, v0, v1, scale) {
    let step = (v1 - v0) * scale;
    const limit = this._teleport.get(name);
    if (limit !== undefined) step = pyMin(limit, pyMax(-limit, step));
    const x = v1 + step;
    return Number.isFinite(x) ? x : v1; // overflow (inf or inf * 0): hold, never draw it
  }
}
