// The demo's prediction (js/demo/predict.js): reconciliation rules as prediction.py's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DT, LocalPlayer, Predictor, movePlayer } from "../demo/predict.js";
import { pathType } from "../demo/netgraph.js";

const start = { x: 100, y: 100, vx: 0, vy: 0 };

test("movePlayer: accelerates towards the steered speed, walls stop the circle", () => {
  let p = start;
  for (let i = 0; i < 120; i++) p = movePlayer(p, [1, 0]);
  assert.ok(p.vx > 270 && p.vx <= 280 && p.vy === 0);
  for (let i = 0; i < 600; i++) p = movePlayer(p, [1, 1]);
  assert.deepEqual([p.x, p.y, p.vx, p.vy], [960 - 18, 600 - 18, 0, 0]);
  assert.ok(Math.abs(DT - 1 / 60) < 1e-12);
});

test("reconcile drops acked inputs and replays the rest from the host's state", () => {
  const pr = new Predictor(start);
  for (let i = 0; i < 10; i++) pr.push([1, 0]);
  const host = { x: 120, y: 100, vx: 100, vy: 0 };
  const got = pr.reconcile(host, 5);
  assert.deepEqual(pr.pending.map(([s]) => s), [6, 7, 8, 9]);
  let want = host;
  for (let i = 0; i < 4; i++) want = movePlayer(want, [1, 0]);
  assert.deepEqual(got, want);
  assert.deepEqual(pr.reconcile({ x: 1, y: 1, vx: 0, vy: 0 }, 3), got, "an older ack is ignored");
  assert.throws(() => pr.reconcile(host, 10), RangeError, "an ack of an input never sent");
  assert.deepEqual(pr.pendingInputs(2).map(([s]) => s), [8, 9]);
});

test("LocalPlayer: placed by the first snapshot; corrections slide, big ones snap", () => {
  const me = new LocalPlayer();
  assert.equal(me.tick([1, 0]), null, "nothing to predict before the host placed us");
  me.onSnapshot({ x: 1000, y: 1000, vx: 0, vy: 0, a: -1 });
  const packet = me.tick([1, 0]);
  assert.deepEqual(packet, { k: "in", i: [[0, [1, 0]]] });
  me.onSnapshot({ x: 1000, y: 1100, vx: 0, vy: 0, a: 0 }); // the host says we are 10 px lower
  assert.equal(me.corrections, 1);
  assert.ok(Math.abs(me.drawn().y - 100) < 1e-9, "drawn where we were, sliding from there");
  for (let i = 0; i < 30; i++) me.tick([0, 0]);
  assert.ok(Math.abs(me.drawn().y - 110) < 0.1, "the correction decayed");
  me.onSnapshot({ x: 5000, y: 5000, vx: 0, vy: 0, a: 30 });
  assert.deepEqual(me.error, [0, 0], "over 120 px: snap");
  const back = new LocalPlayer(); // a reload: the host applied inputs up to 40 already
  back.onSnapshot({ x: 1000, y: 1000, vx: 0, vy: 0, a: 40 });
  assert.equal(back.tick([0, 1]).i[0][0], 49);
});

test("pathType names the ICE path as netcode.net.ice.path_type", () => {
  assert.equal(pathType("host", "host"), "host");
  assert.equal(pathType("prflx", "host"), "srflx");
  assert.equal(pathType("host", "relay"), "relay");
});
