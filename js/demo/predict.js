// Client-side prediction for the browser demo: the same movement code as
// demo_game/sim.py (move_player) and the same reconciliation as
// netcode/protocol/prediction.py (Predictor) and demo_game/client.py (ClientGame).
// Pure: no DOM, no network; tests/browser/test_js_unit.py checks movePlayer against
// the Python simulation tick by tick.
//
// Our circle moves at once with our inputs; each input gets a sequence number and
// stays pending until a snapshot says the host applied it ("a": the newest applied
// seq). Then we restart from the host's state and replay what it has not seen yet.

export const TICK_RATE = 60;
export const DT = 1 / TICK_RATE;
export const ARENA_W = 960;
export const ARENA_H = 600;
export const PLAYER_RADIUS = 18;
export const MAX_SPEED = 280;
const RESPONSE = 9; // 1/s: how fast velocity approaches the steered target (sim.py)
const ERROR_DECAY = 0.85; // per tick: a correction is ~90 % absorbed after 14 ticks
const MAX_SMOOTHED_PX = 120; // larger corrections snap: sliding that far would look wrong
export const INPUT_REDUNDANCY = 8; // each packet repeats the newest 8 pending inputs

function clampToArena(p) {
  const r = PLAYER_RADIUS;
  const x = Math.min(Math.max(p.x, r), ARENA_W - r);
  const y = Math.min(Math.max(p.y, r), ARENA_H - r);
  return { x, y, vx: x === p.x ? p.vx : 0, vy: y === p.y ? p.vy : 0 };
}

/** One tick of movement (sim.py move_player): input axes are -1, 0 or 1. */
export function movePlayer(p, [dx, dy], dt = DT) {
  let tx = dx;
  let ty = dy;
  const norm = Math.hypot(tx, ty);
  if (norm > 0) (tx = (tx / norm) * MAX_SPEED), (ty = (ty / norm) * MAX_SPEED);
  const k = Math.min(1, RESPONSE * dt);
  const vx = p.vx + (tx - p.vx) * k;
  const vy = p.vy + (ty - p.vy) * k;
  return clampToArena({ x: p.x + vx * dt, y: p.y + vy * dt, vx, vy });
}

/** Input history and reconciliation (prediction.py Predictor, same rules). */
export class Predictor {
  constructor(state, { firstSeq = 0, maxPending = 1024 } = {}) {
    this.state = state;
    this.nextSeq = firstSeq;
    this.maxPending = maxPending;
    this.pending = []; // [seq, [dx, dy]], oldest first
    this.lastAcked = null;
    this.reconciliations = 0;
  }

  /** Apply our input now; returns its sequence number. */
  push(input) {
    const seq = this.nextSeq++;
    this.pending.push([seq, input]);
    if (this.pending.length > this.maxPending) this.pending.shift();
    this.state = movePlayer(this.state, input);
    return seq;
  }

  pendingInputs(n = INPUT_REDUNDANCY) {
    return this.pending.slice(-n);
  }

  /** Adopt the host's ``state`` (the newest input it applied: ``last``, null for none)
   *  and replay the inputs it has not applied. An older ack than one seen: ignored. */
  reconcile(state, last) {
    if (last !== null && (!Number.isInteger(last) || last < 0 || last >= this.nextSeq)) {
      throw new RangeError(`last processed input ${last} was never sent`);
    }
    if (last !== null) {
      if (this.lastAcked !== null && last < this.lastAcked) return this.state;
      this.lastAcked = last;
      while (this.pending.length && this.pending[0][0] <= last) this.pending.shift();
    }
    for (const [, inp] of this.pending) state = movePlayer(state, inp);
    this.state = state;
    this.reconciliations++;
    return state;
  }
}

/** Our own circle (client.py ClientGame's local part): predictor plus a decaying
 *  correction offset, so a reconciliation slides the circle instead of snapping it. */
export class LocalPlayer {
  constructor() {
    this.predictor = null; // from the first snapshot that holds us
    this.error = [0, 0];
    this.corrections = 0;
  }

  /** One tick with ``input``: the state message to send the host, or null (not placed yet). */
  tick(input) {
    if (this.predictor === null) return null;
    this.error = [this.error[0] * ERROR_DECAY, this.error[1] * ERROR_DECAY];
    this.predictor.push(input);
    return { k: "in", i: this.predictor.pendingInputs() };
  }

  /** Our entity in a snapshot (positions in 0.1 px, "a": newest input applied). */
  onSnapshot(mine) {
    const state = { x: mine.x / 10, y: mine.y / 10, vx: mine.vx, vy: mine.vy };
    const ack = mine.a >= 0 ? mine.a : null;
    if (this.predictor === null) {
      // A seat taken back after a reload: the host already applied inputs of our
      // previous page up to `a`; carry on past them and what it may still hold queued.
      const firstSeq = ack === null ? 0 : ack + 1 + INPUT_REDUNDANCY;
      this.predictor = new Predictor(state, { firstSeq });
      return;
    }
    const old = this.predictor.state;
    let now;
    try {
      now = this.predictor.reconcile(state, ack);
    } catch {
      return; // an ack of an input we never sent (a stale seat): ignore that snapshot
    }
    if (Math.hypot(old.x - now.x, old.y - now.y) > 1) this.corrections++;
    const ex = this.error[0] + old.x - now.x;
    const ey = this.error[1] + old.y - now.y;
    this.error = Math.hypot(ex, ey) < MAX_SMOOTHED_PX ? [ex, ey] : [0, 0];
  }

  /** Where to draw us: predicted plus what is left of the last correction. */
  drawn() {
    if (this.predictor === null) return null;
    const s = this.predictor.state;
    return { x: s.x + this.error[0], y: s.y + this.error[1] };
  }
}
