// Codec tests: the hex vectors of docs/PROTOCOL.md 2.10 and docs/STATE_SYNC.md 4.5 are
// parsed from the docs themselves, so the JS codec and the docs cannot drift apart.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  DEFAULT_LIMITS, DecodeError, EncodeError, Float, Int, decode, encode, fromHex, toHex,
} from "../src/msgpack.js";
import { ChunkAssembler, MsgType, encodeEventPackets, parse, serialize } from "../src/wire.js";
import { SnapshotReceiver, SnapshotSender } from "../src/snapshot.js";
import { ReliabilityEndpoint } from "../src/reliability.js";

const docs = (name) => readFileSync(fileURLToPath(new URL(`../../docs/${name}`, import.meta.url)), "utf8");

function protocolVectors() {
  const text = docs("PROTOCOL.md");
  const end = text.indexOf("### 2.11");
  const section = text.slice(text.indexOf("### 2.10"), end === -1 ? undefined : end);
  const rows = {};
  for (const m of section.matchAll(/^\| ([A-Z]+) .*\| `([0-9a-f]+)`\s*\|$/gm)) rows[m[1]] = m[2];
  const state = section.match(/^\s+(97[0-9a-f]{20,})$/m);
  rows.STATE = state[1];
  return rows;
}

function stateSyncVectors() {
  const text = docs("STATE_SYNC.md");
  const section = text.slice(text.indexOf("### 4.5"), text.indexOf("### 4.6"));
  return [...section.matchAll(/^\| (\d) \|.*\| `([0-9a-f ]+)` \|$/gm)].map((m) => m[2].replace(/ /g, ""));
}

const EXPECTED = {
  STATE: { type: MsgType.STATE, seq: 42, ack: 41, ackBits: 3, sentUs: 1_000_000, payload: { x: new Float(1.5), y: new Float(-2.0) } },
  EVENT: { type: MsgType.EVENT, payload: { chat: "hi" } },
  PING: { type: MsgType.PING, sentUs: 10_000 },
  PONG: { type: MsgType.PONG, echoUs: 10_000, sentUs: 10 },
  BYE: { type: MsgType.BYE, reason: "left" },
  CHUNK: { type: MsgType.CHUNK, msgId: 0, index: 1, count: 2, data: new TextEncoder().encode("abc") },
  SNAPSHOT: { type: MsgType.SNAPSHOT, seq: 7, ack: 6, ackBits: 1, sentUs: 500, payload: new Map([[1, { x: 0.5 }]]) },
  ACK: { type: MsgType.ACK, seq: 5, ack: 4, ackBits: 15, sentUs: 1000 },
};

test("PROTOCOL.md 2.10 vectors: every message type, encode and parse", () => {
  const vectors = protocolVectors();
  for (const name of Object.keys(EXPECTED)) assert.ok(vectors[name], `no ${name} vector in the docs`);
  for (const [name, hex] of Object.entries(vectors)) {
    if (!EXPECTED[name]) {
      // A vector added to the docs later: it must at least parse as its type.
      assert.equal(parse(fromHex(hex)).type, MsgType[name], name);
      continue;
    }
    assert.equal(toHex(serialize(EXPECTED[name])), hex, name);
    const m = parse(fromHex(hex));
    assert.equal(m.type, EXPECTED[name].type, name);
    for (const k of ["seq", "ack", "ackBits", "sentUs", "echoUs", "reason", "msgId", "index", "count"]) {
      assert.equal(m[k], EXPECTED[name][k], `${name}.${k}`);
    }
  }
  const snap = parse(fromHex(vectors.SNAPSHOT));
  assert.ok(snap.payload instanceof Map, "int keys decode into a Map");
  assert.deepEqual({ ...snap.payload.get(1) }, { x: 0.5 });
  assert.deepEqual({ ...parse(fromHex(vectors.STATE)).payload }, { x: 1.5, y: -2 });
});

test("STATE_SYNC.md 4.5 vectors: sender bytes and receiver reconstruction", () => {
  const [v1, v2, v3] = stateSyncVectors();
  const tx = new SnapshotSender({ quantize: { x: 0.01 } });
  const rx = new SnapshotReceiver({ quantize: { x: 0.01 } });
  const w1 = new Map([[1, { x: 1.5, hp: 100 }], ["p2", { name: "ann" }]]);
  const [p1] = tx.encode(w1, 6);
  assert.equal(toHex(encode(p1)), v1);
  tx.onAck(6);
  const [p2] = tx.encode(new Map([[1, { x: 1.51, hp: 100 }]]), 7);
  assert.equal(toHex(encode(p2)), v2);
  const [p3] = tx.encode(new Map([[1, { x: 1.51 }]]), 8);
  assert.equal(toHex(encode(p3)), v3);
  const [f1, e1] = rx.receive(6, decode(fromHex(v1)));
  assert.equal(f1, 6);
  assert.deepEqual([...e1.keys()], [1, "p2"]);
  assert.equal(e1.get(1).hp, 100);
  const [, e3] = rx.receive(8, decode(fromHex(v3)));
  assert.deepEqual([...e3.keys()], [1]);
  assert.ok(Math.abs(e3.get(1).x - 1.51) < 1e-9);
  assert.equal("hp" in e3.get(1), false);
});

test("typed mapping: ints, floats, BigInt, Map keys", () => {
  assert.equal(toHex(encode(-2.0)), "fe", "an integral number is an int");
  assert.equal(toHex(encode(new Float(-2))), "cbc000000000000000", "Float is always float64");
  assert.equal(toHex(encode(2n ** 60n)), "cf1000000000000000");
  assert.equal(decode(encode(2n ** 60n)), 2n ** 60n, "beyond 2^53 decodes as BigInt");
  assert.equal(decode(encode(new Int(7))), 7);
  assert.equal(toHex(encode(new Map([[1, "a"], ["1", "b"]]))), "8201a161a131a162");
  const m = decode(fromHex("8201a161a131a162"));
  assert.ok(m instanceof Map);
  assert.equal(m.get(1), "a");
  assert.equal(m.get("1"), "b", "int and str keys do not collide");
  const obj = decode(encode({ __proto__x: 1, a: [1, 2] }));
  assert.equal(Object.getPrototypeOf(obj), null);
  assert.throws(() => new Int(1.5), EncodeError);
});

test("refused at the send call with a clear error", () => {
  for (const bad of [undefined, new Date(), () => 1, Symbol("s"), new Set([1]), { a: undefined }]) {
    assert.throws(() => encode(bad), EncodeError);
  }
  assert.throws(() => encode(new Date()), /Date/);
  assert.throws(() => encode(undefined), /undefined/);
  assert.throws(() => encode(new Map([[1.5, 1]])), /map keys/);
  assert.throws(() => encode(2n ** 64n), /64-bit/);
  assert.throws(() => encode("\ud800"), /surrogate/);
});

test("the same limits as Python: depth, lengths, containers, str", () => {
  let deep = 1;
  for (let i = 0; i <= DEFAULT_LIMITS.maxDepth; i++) deep = [deep];
  assert.throws(() => encode(deep), /maxDepth/);
  assert.doesNotThrow(() => encode(deep[0]));
  assert.throws(() => encode(new Array(4097).fill(0)), /maxContainerLen/);
  assert.throws(() => encode("x".repeat(16_385)), /maxStrLen/);
  assert.throws(() => encode(Array.from({ length: 9 }, () => new Array(1000).fill([]))), /maxContainers/);
  assert.throws(() => decode(encode(deep[0]).slice(0, -1)), /truncated/);
  const deepBytes = fromHex("91".repeat(17) + "01");
  assert.throws(() => decode(deepBytes), /maxDepth/);
  assert.throws(() => decode(fromHex("d6ff00000000")), /ext/, "timestamp ext refused");
  assert.throws(() => decode(fromHex("0101")), /trailing/);
  assert.throws(() => decode(fromHex("a2c328")), /UTF-8/);
  assert.throws(() => decode(fromHex("81c001")), /map keys/);
  assert.throws(() => parse(fromHex("930201c0")), DecodeError, "unknown version");
  assert.throws(() => parse(fromHex("93010b0a")), /unknown message type/);
  assert.throws(() => parse(fromHex("930104cb40c3880000000000")), /sent_us/, "float field");
});

test("events over 1,200 B travel as CHUNKs and reassemble", () => {
  const big = { blob: "y".repeat(5000) };
  const packets = encodeEventPackets(big, 9);
  assert.ok(packets.length >= 5);
  assert.ok(packets.every((p) => p.length <= 1200 + 19));
  const asm = new ChunkAssembler();
  let out = null;
  for (const p of packets) out = asm.push(parse(p)) ?? out;
  assert.equal(out.msg.payload.blob.length, 5000);
  assert.equal(encodeEventPackets({ a: 1 }, 1).length, 1);
  const asm2 = new ChunkAssembler();
  asm2.push(parse(packets[0]));
  assert.throws(() => asm2.push(parse(packets[2])), /out of sequence/);
});

test("acks: 32-packet window, stale drops, RTT", () => {
  const a = new ReliabilityEndpoint();
  const b = new ReliabilityEndpoint();
  for (let i = 0; i < 5; i++) assert.ok(b.receive(a.nextHeader(i * 0.01), i * 0.01));
  const h = b.nextHeader(0.1);
  assert.equal(h.ack, 4);
  assert.equal(h.ackBits, 0b11111);
  assert.equal(b.receive({ seq: 2, ack: 0, ackBits: 0 }, 0.1), false, "stale");
  a.receive(h, 0.11);
  assert.deepEqual(a.takeAcked(), [4, 3, 2, 1, 0]);
  b.discardReceived(4);
  assert.equal(b.nextHeader(0.2).ackBits, 0b11110);
  a.addRttSample(0.002);
  assert.ok(Math.abs(a.stats(1).rttMs - 2) < 1e-9);
});

test("fragmented full snapshots reassemble under the first sequence", () => {
  const world = new Map();
  for (let i = 0; i < 64; i++) world.set(i, { x: i * 1.25, y: -i * 0.5, name: `player-${i}` });
  const tx = new SnapshotSender();
  const parts = tx.encode(world, 100);
  assert.ok(parts.length > 1);
  const rx = new SnapshotReceiver();
  let done = null;
  parts.forEach((p, i) => {
    const bytes = encode(p);
    assert.ok(bytes.length + 22 <= DEFAULT_LIMITS.maxStateBytes);
    done = rx.receive(100 + i, decode(bytes)) ?? done;
  });
  assert.equal(done[0], 100);
  assert.equal(done[1].size, 64);
  assert.equal(done[1].get(63).name, "player-63");
});

test("RELAY / FORWARD: fields, payload passed on byte for byte", async () => {
  const { payloadBytes } = await import("../src/wire.js");
  const relay = serialize({ type: MsgType.RELAY, to: "", n: 3, sentUs: 5, payload: { x: new Float(2) } });
  const m = parse(relay);
  assert.equal(m.to, "");
  assert.equal(m.n, 3);
  assert.equal(toHex(payloadBytes(relay)), toHex(encode({ x: new Float(2) })), "2.0 stays a float");
  const fwd = serialize({ type: MsgType.FORWARD, origin: "abc", n: 3, sentUs: 5, body: payloadBytes(relay) });
  assert.equal(parse(fwd).origin, "abc");
  assert.throws(() => serialize({ type: MsgType.FORWARD, origin: "", n: 1, sentUs: 1, payload: 1 }), EncodeError);
  assert.throws(() => parse(fromHex("96010aa0000000")), /peer id/, "FORWARD needs an origin");
});
