// Drawing remote entities smoothly in the past (STATE_SYNC.md 5, a subset):
// lerp numeric fields between the two snapshots around now - delay, hold when dry.

export class InterpolationBuffer {
  constructor({ snapshotRate = 60, delay = null, capacity = 64 } = {}) {
    this.delay = delay ?? 2 / snapshotRate;
    this.capacity = capacity;
    this.minSpacing = 0.25 / snapshotRate;
    this.items = []; // [t, Map]
    this.droppedSnapshots = 0;
  }

  /** Add a snapshot (Map of entities) received at time ``t`` (seconds); false if refused. */
  push(t, entities) {
    if (!Number.isFinite(t)) return void this.droppedSnapshots++, false;
    const last = this.items[this.items.length - 1];
    if (last && t - last[0] < this.minSpacing) return void this.droppedSnapshots++, false;
    this.items.push([t, entities instanceof Map ? entities : new Map(Object.entries(entities))]);
    if (this.items.length > this.capacity) this.items.shift();
    return true;
  }

  /** The entities as of ``now - delay``. */
  sample(now) {
    const rt = now - this.delay;
    const items = this.items;
    if (!items.length) return new Map();
    if (rt <= items[0][0]) return items[0][1];
    for (let i = items.length - 1; i > 0; i--) {
      const [t0, a] = items[i - 1];
      const [t1, b] = items[i];
      if (rt >= t0 && rt < t1) return lerpMap(a, b, (rt - t0) / (t1 - t0));
    }
    return items[items.length - 1][1];
  }
}

function lerpMap(a, b, alpha) {
  const out = new Map();
  for (const [id, e0] of a) {
    const e1 = b.get(id);
    if (!e1) {
      out.set(id, e0);
      continue;
    }
    const e = { ...e0 };
    for (const k of Object.keys(e0)) {
      const v0 = e0[k];
      const v1 = e1[k];
      if (typeof v0 === "number" && typeof v1 === "number") e[k] = v0 + (v1 - v0) * alpha;
    }
    out.set(id, e);
  }
  return out;
}
