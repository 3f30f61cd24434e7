// InterpolationBuffer (js/src/interpolation.js) replays the operations of
// fixtures/interpolation_vectors.json and must answer as Python's
// netcode/protocol/interpolation.py did (tests/browser/test_js_interpolation.py writes
// the file from Python and checks it is current); plus the errors of the JS API.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ConfigError, EncodeError, InterpolationBuffer, recommendedDelay } from "../src/netcode.js";

const VECTORS = JSON.parse(readFileSync(new URL("./fixtures/interpolation_vectors.json", import.meta.url), "utf8"));
const SPECIAL = { nan: NaN, inf: Infinity, "-inf": -Infinity };

/** The fixture's values with {"$f": "nan"|"inf"|"-inf"} back as numbers. */
function unwire(v) {
  if (Array.isArray(v)) return v.map(unwire);
  if (v !== null && typeof v === "object") {
    if (typeof v.$f === "string" && Object.keys(v).length === 1) return SPECIAL[v.$f];
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwire(x)]));
  }
  return v;
}

function run(buf, op) {
  const [kind, arg, ents] = op;
  switch (kind) {
    case "push": return buf.push(arg, new Map(ents));
    case "sample_at": return [...buf.sampleAt(arg)];
    case "sample": return [...buf.sample(arg)];
    case "lag": return buf.lag(arg);
    case "delay": return void (buf.delay = arg), null;
    case "max_extrapolation": return void (buf.maxExtrapolation = arg), null;
    case "clear": return buf.clear(), null;
    default: return [buf.droppedSnapshots, buf.droppedEntities, buf.length, buf.newestTime];
  }
}

/** Same value: numbers equal (NaN equals NaN; 1e-12 relative for float rounding). */
function same(got, want, where) {
  if (typeof want === "number" && typeof got === "number") {
    const ok = Object.is(got, want) || got === want || Math.abs(got - want) <= 1e-12 * Math.max(1, Math.abs(want));
    return assert.ok(ok, `${where}: ${got} != ${want}`);
  }
  if (Array.isArray(want)) {
    assert.ok(Array.isArray(got), `${where}: not an array: ${JSON.stringify(got)}`);
    assert.equal(got.length, want.length, `${where}: length`);
    return want.forEach((w, i) => same(got[i], w, `${where}[${i}]`));
  }
  if (want !== null && typeof want === "object") {
    assert.deepEqual(Object.keys(got), Object.keys(want), `${where}: fields`);
    return Object.keys(want).forEach((k) => same(got[k], want[k], `${where}.${k}`));
  }
  assert.equal(got, want, where);
}

for (const vector of VECTORS) {
  test(`interpolation as Python's: ${vector.name}`, () => {
    const { options, ops, expect } = unwire(vector);
    const buf = new InterpolationBuffer(options);
    assert.ok(ops.length > 20 && ops.length === expect.length);
    ops.forEach((op, i) => same(run(buf, op), expect[i], `${vector.name} op ${i} ${op[0]}(${op[1]})`));
  });
}

test("defaults as Python's: delay 2 intervals, 0.1 s extrapolation, quarter-interval spacing", () => {
  const buf = new InterpolationBuffer();
  assert.equal(buf.delay, 2 / 60);
  assert.equal(buf.maxExtrapolation, 0.1);
  assert.equal(buf.minSpacing, 0.25 / 60);
  assert.equal(buf.capacity, 64);
  assert.equal(recommendedDelay(30, 5), 2 / 30 + 0.01);
  assert.equal(recommendedDelay(30, -5), 2 / 30, "a negative jitter counts as 0");
});

test("the game's own mistakes throw ConfigError / EncodeError; network values never do", () => {
  assert.throws(() => new InterpolationBuffer({ snapshotRate: 0 }), ConfigError);
  assert.throws(() => new InterpolationBuffer({ capacity: 1 }), ConfigError);
  assert.throws(() => new InterpolationBuffer({ minSpacing: 0 }), ConfigError);
  assert.throws(() => new InterpolationBuffer({ teleport: { x: -1 } }), ConfigError);
  assert.throws(() => new InterpolationBuffer({ maxExtrapolation: NaN }), ConfigError);
  const buf = new InterpolationBuffer();
  assert.throws(() => (buf.delay = -1), ConfigError);
  assert.throws(() => buf.sample(NaN), ConfigError);
  assert.throws(() => buf.sampleAt(Infinity), ConfigError);
  assert.throws(() => buf.push("1", new Map()), ConfigError);
  assert.throws(() => buf.push(1, null), EncodeError);
  assert.throws(() => buf.push(1, [[1, {}]]), EncodeError);
  assert.throws(() => buf.push(1, new Map([[1, 5]])), EncodeError);
  assert.equal(buf.push(NaN, new Map()), false);
  assert.equal(buf.push(1, new Map([[1, { x: NaN }], [2, { x: 1 }]])), true);
  assert.deepEqual([buf.droppedSnapshots, buf.droppedEntities, [...buf.sampleAt(1).keys()]], [1, 1, [2]]);
});

test("plain objects are taken as entity maps; a BigInt field interpolates as a number", () => {
  const buf = new InterpolationBuffer({ snapshotRate: 10, delay: 0 });
  buf.push(1, { a: { x: 0n, s: "old" } });
  buf.push(2, { a: { x: 10n, s: "new" } });
  assert.deepEqual(buf.sampleAt(1.5).get("a"), { x: 5, s: "old" });
});
