// Session pieces that need no browser: the event queue bounds, handlers, interpolation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { InterpolationBuffer, Session } from "../src/netcode.js";

function session(over = {}) {
  return new Session({ maxQueuedStates: 3, maxQueuedEvents: 5, ...over });
}

test("states: at most maxQueuedStates per peer wait, newest win; others untouched", () => {
  const s = session();
  for (let i = 0; i < 10; i++) {
    s._emit({ type: "StateReceived", peerId: "a", data: i });
    s._emit({ type: "StateReceived", peerId: "b", data: i });
  }
  s._emit({ type: "PeerJoined", peerId: "a" });
  const out = s.poll();
  assert.deepEqual(out.filter((e) => e.peerId === "a" && e.type === "StateReceived").map((e) => e.data), [7, 8, 9]);
  assert.deepEqual(out.filter((e) => e.peerId === "b").map((e) => e.data), [7, 8, 9]);
  assert.ok(out.some((e) => e.type === "PeerJoined"), "lifecycle events always queue");
  s._emit({ type: "StateReceived", peerId: "a", data: 10 });
  assert.equal(s.poll().length, 1, "poll() resets the counts");
});

test("events: over maxQueuedEvents the peer is lost with reason overflow", () => {
  const s = session();
  const lost = [];
  s.links.set("a", { lose: (reason) => lost.push(reason) });
  for (let i = 0; i < 5; i++) s._emit({ type: "EventReceived", peerId: "a", data: i });
  assert.deepEqual(lost, []);
  s._emit({ type: "EventReceived", peerId: "a", data: 5 });
  assert.deepEqual(lost, ["overflow"]);
});

test("nextEvent takes from the queue and waits; handlers skip the queue", async () => {
  const s = session();
  s._emit({ type: "EventReceived", peerId: "a", data: 1 });
  assert.equal((await s.nextEvent()).data, 1);
  const waiting = s.nextEvent(1000);
  s._emit({ type: "EventReceived", peerId: "a", data: 2 });
  assert.equal((await waiting).data, 2);
  const seen = [];
  const off = s.on("StateReceived", (e) => seen.push(e.data));
  s._emit({ type: "StateReceived", peerId: "a", data: 3 });
  off();
  s._emit({ type: "StateReceived", peerId: "a", data: 4 });
  assert.deepEqual(seen, [3]);
  assert.deepEqual(s.poll().map((e) => e.data), [4]);
  await assert.rejects(s.nextEvent(10), /no event/);
});

test("interpolation: lerp between snapshots, extrapolate a little when dry, refuse bad times", () => {
  const buf = new InterpolationBuffer({ snapshotRate: 10, delay: 0.1 });
  assert.ok(buf.push(1.0, new Map([[1, { x: 0, name: "a" }]])));
  assert.ok(buf.push(1.1, new Map([[1, { x: 10, name: "b" }]])));
  assert.equal(buf.push(NaN, new Map()), false);
  assert.equal(buf.push(1.1, new Map()), false, "too close to a held snapshot");
  assert.equal(buf.droppedSnapshots, 2);
  const mid = buf.sample(1.15).get(1);
  assert.ok(Math.abs(mid.x - 5) < 1e-9);
  assert.equal(mid.name, "a", "non-numbers take the older value");
  assert.ok(Math.abs(buf.sample(5).get(1).x - 20) < 1e-9, "ran dry: extrapolated for maxExtrapolation (0.1 s), then held");
  assert.equal(buf.sample(0).get(1).x, 0, "before the oldest: the oldest");
});
