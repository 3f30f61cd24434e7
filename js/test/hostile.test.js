// Hostile bytes: parse() and the snapshot receiver throw only DecodeError, whatever arrives.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DecodeError, decode, encode } from "../src/msgpack.js";
import { ChunkAssembler, MsgType, parse } from "../src/wire.js";
import { SnapshotReceiver } from "../src/snapshot.js";

function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function onlyDecodeError(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof DecodeError, `${err?.name}: ${err?.message}`);
  }
}

test("random bytes and mutated envelopes raise only DecodeError", () => {
  const rand = rng(13);
  const valid = [
    "9701012a2903ce000f424082a178cb3ff8000000000000a179cbc000000000000000",
    "960107000102c403616263",
    "970103070601cd01f4810181a178cb3fe0000000000000",
  ].map((h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16)));
  for (let i = 0; i < 20000; i++) {
    let bytes;
    if (i % 2) {
      bytes = new Uint8Array(1 + Math.floor(rand() * 64)).map(() => Math.floor(rand() * 256));
    } else {
      bytes = valid[i % 3].slice();
      for (let k = 0; k < 3; k++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
    }
    onlyDecodeError(() => parse(bytes));
  }
});

test("a length header claiming 4 GiB costs nothing", () => {
  for (const hex of ["dbffffffff", "c6ffffffff", "ddffffffff", "dfffffffff"]) {
    const bytes = Uint8Array.from(hex.match(/../g), (x) => parseInt(x, 16));
    assert.throws(() => decode(bytes), DecodeError);
  }
});

test("nested empty maps stop at maxContainers", () => {
  const bytes = new Uint8Array(9000).fill(0x91);
  bytes[bytes.length - 1] = 0x80;
  assert.throws(() => decode(bytes), DecodeError);
  const wide = encode(Array.from({ length: 4096 }, () => []));
  assert.doesNotThrow(() => decode(wide));
  const wider = new Uint8Array([0xdc, 0x20, 0x01, ...new Array(8193).fill(0x90)]);
  assert.throws(() => decode(wider), /maxContainers|maxContainerLen/);
});

test("hostile snapshot payloads: only DecodeError, state kept", () => {
  const rx = new SnapshotReceiver({ quantize: { x: 0.01 } });
  rx.receive(1, { e: new Map([[1, { x: 5 }]]) });
  const bad = [
    null, 5, [], { e: 1 }, { e: {}, z: 1 }, { b: 1, e: {}, r: [99] }, { b: 1, e: {}, x: new Map([[1, ["nope"]]]) },
    { b: 1, e: new Map([[1, { x: "s" }]]) }, { e: {}, f: [0, 1] }, { e: {}, f: [5, 2] }, { e: {}, r: [] },
    { b: 70000, e: {} }, { e: new Map([[1, 5]]) },
  ];
  for (const p of bad) onlyDecodeError(() => rx.receive(2, p));
  const [, ents] = rx.receive(3, { b: 1, e: new Map([[1, { x: 2 }]]) });
  assert.ok(Math.abs(ents.get(1).x - 0.07) < 1e-9, "baseline 1 intact after the hostile ones");
});

test("chunks out of order or oversize drop the partial message", () => {
  const asm = new ChunkAssembler({ ...parseLimits(), maxEventBytes: 10 });
  assert.equal(asm.push({ type: MsgType.CHUNK, msgId: 1, index: 0, count: 3, data: new Uint8Array(6) }), null);
  assert.throws(() => asm.push({ type: MsgType.CHUNK, msgId: 1, index: 1, count: 3, data: new Uint8Array(6) }), /maxEventBytes/);
  assert.throws(() => asm.push({ type: MsgType.CHUNK, msgId: 1, index: 2, count: 3, data: new Uint8Array(1) }), /out of sequence/);
});

function parseLimits() {
  return { maxPacketBytes: 65536, maxEventBytes: 1 << 20, maxDepth: 16, maxContainerLen: 4096, maxStrLen: 16384, maxContainers: 8192 };
}
