// The hello (docs/PROTOCOL.md 2.1.1): same fields, checks and hash as netcode/protocol/hello.py,
// and a PeerLink that refuses a different configuration at once (fake RTCPeerConnection).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { DEFAULT_LIMITS } from "../src/msgpack.js";
import {
  HELLO_KEY, HelloError, MAX_DETAIL_CHARS, checkRemote, describe, differences, helloOf,
  mismatchData, mismatchDetail, parseHello, quantizeHash, serializeHello,
} from "../src/hello.js";
import { PeerLink } from "../src/link.js";
import { FakePc } from "./fakes.js";

const CHANNELS = [
  { label: "state", id: 1, ordered: false, maxRetransmits: 0 },
  { label: "events", id: 2, ordered: true },
];
const cfgOf = (over = {}) => ({ channels: CHANNELS, limits: DEFAULT_LIMITS, quantize: null, ...over });
const CHAT = [...CHANNELS, { label: "chat", id: 3, ordered: true }];
const CHAT_UNORDERED = [...CHANNELS, { label: "chat", id: 3, ordered: false }];

function documentedHello() {
  const text = readFileSync(fileURLToPath(new URL("../../docs/PROTOCOL.md", import.meta.url)), "utf8");
  const section = text.slice(text.indexOf("#### 2.1.1"), text.indexOf("### 2.2"));
  return JSON.parse(section.match(/```json\n(.*?)\n```/s)[1]);
}

test("the default hello is the one in PROTOCOL.md 2.1.1 (what Python sends)", () => {
  const ours = helloOf(cfgOf());
  assert.deepEqual(serializeHello(ours), documentedHello());
  assert.equal(checkRemote(ours, { [HELLO_KEY]: documentedHello() }).status, "match");
  assert.deepEqual(parseHello(JSON.parse(JSON.stringify(serializeHello(ours)))), ours);
});

test("quantize hash: canonical, and the same value as Python's", () => {
  assert.equal(quantizeHash(null), "");
  assert.equal(quantizeHash({}), "");
  assert.equal(quantizeHash({ x: 0.01, y: 0.01, "é": 2.5 }), "960bb118"); // PROTOCOL.md 2.1.1
  assert.equal(quantizeHash({ y: 0.01, "é": 2.5, x: 0.01 }), "960bb118");
  assert.notEqual(quantizeHash({ x: 0.02 }), quantizeHash({ x: 0.01 }));
});

test("differences name what differs, this side first, in Python's wording", () => {
  const ours = helloOf(cfgOf({ channels: CHAT }));
  const theirs = helloOf(cfgOf({
    channels: [...CHAT_UNORDERED.slice(0, 2), { label: "chat", id: 3, ordered: false }, { label: "v\n", id: 9 }],
    quantize: { x: 0.5 },
    limits: { ...DEFAULT_LIMITS, maxEventBytes: 2_097_152 },
  }));
  assert.deepEqual(differences(ours, theirs), [
    'channel 3 "chat": ordered true vs false',
    'channel 9 "v\\n": missing on this side',
    `snapshot_quantize: hash none vs ${quantizeHash({ x: 0.5 })}`,
    "limits.max_event_bytes: 1048576 vs 2097152",
  ]);
  const verdict = checkRemote(ours, { [HELLO_KEY]: serializeHello(theirs) });
  assert.equal(verdict.status, "mismatch");
  assert.ok(verdict.detail.startsWith('this side vs the peer: channel 3 "chat": ordered true vs false'));
  assert.ok(describe(Array.from({ length: 20 }, () => "x")).endsWith("; and 12 more"));
});

test("absent, partial and invalid hellos", () => {
  const ours = helloOf(cfgOf({ quantize: { x: 1 } }));
  assert.equal(checkRemote(ours, { type: "offer", sdp: "" }).status, "absent");
  assert.equal(checkRemote(ours, { [HELLO_KEY]: null }).status, "absent");
  const minimal = { v: 1, channels: serializeHello(ours).channels, future: [1, 2] };
  assert.equal(checkRemote(ours, { [HELLO_KEY]: minimal }).status, "match", "unsaid parts are not compared");
  const bad = [
    [], { channels: [] }, { v: true, channels: [] }, { v: 1 }, { v: 1, channels: new Array(1025).fill({}) },
    { v: 1, channels: [{ id: 1024, label: "a", ordered: true }] }, { v: 1, channels: [{ id: 1, label: "", ordered: true }] },
    { v: 1, channels: [{ id: 1, label: "a", ordered: 1 }] },
    { v: 1, channels: [{ id: 1, label: "a", ordered: true, max_retransmits: 1, max_packet_lifetime_ms: 1 }] },
    { v: 1, channels: [{ id: 1, label: "a", ordered: true }, { id: 1, label: "b", ordered: true }] },
    { v: 1, channels: [], quantize: "XYZ" }, { v: 1, channels: [], limits: [] },
    { v: 1, channels: [], limits: { max_depth: 0 } },
  ];
  for (const value of bad) {
    assert.throws(() => parseHello(value), HelloError);
    const verdict = checkRemote(ours, { [HELLO_KEY]: value });
    assert.equal(verdict.status, "invalid", JSON.stringify(value).slice(0, 80));
    assert.ok(verdict.detail.length < 300);
  }
});

function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function randomValue(rand, depth = 0) {
  const pick = Math.floor(rand() * (depth > 3 ? 6 : 9));
  const scalars = [null, true, 1, -1.5, 1023, "state", "", 2 ** 60];
  if (pick < 6) return scalars[Math.floor(rand() * scalars.length)];
  if (pick === 6) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1));
  const keys = ["v", "channels", "id", "label", "ordered", "max_retransmits", "max_packet_lifetime_ms", "quantize", "limits", "max_depth"];
  const out = {};
  for (let i = Math.floor(rand() * 5); i > 0; i--) out[keys[Math.floor(rand() * keys.length)]] = randomValue(rand, depth + 1);
  return out;
}

test("hostile hellos: never a crash, only a verdict, bounded details", () => {
  const ours = helloOf(cfgOf());
  const rand = rng(7);
  const seen = new Set();
  for (let i = 0; i < 5000; i++) {
    const value = randomValue(rand);
    const verdict = checkRemote(ours, { [HELLO_KEY]: value });
    seen.add(verdict.status);
    assert.ok(verdict.detail.length <= MAX_DETAIL_CHARS);
    const detail = mismatchDetail(ours, { reason: "mismatch", hello: value, detail: value });
    assert.ok(detail.length <= MAX_DETAIL_CHARS + 64 && !/[\p{C}]/u.test(detail));
  }
  assert.ok(seen.has("invalid"));
});

// ------------------------------------------------------------------ a PeerLink, no browser


function fakeSession(channels) {
  globalThis.RTCPeerConnection = FakePc;
  const s = {
    cfg: { ...cfgOf({ channels }), budget: { stateMsgsPerS: 1, stateBytesPerS: 1, pingsAnsweredPerS: 1, burstS: 1 } },
    iceServers: [], topology: "mesh", isHost: false, host: null, signals: [], events: [],
  };
  s._signal = (to, kind, data) => s.signals.push({ to, kind, data });
  s._emit = (ev) => s.events.push(ev);
  return s;
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

async function quietly(fn) {
  const warn = console.warn;
  const warned = [];
  console.warn = (msg) => warned.push(msg);
  try {
    await fn();
  } finally {
    console.warn = warn;
  }
  return warned;
}

test("offer/answer carry the hello; a mismatched offer is refused at once on both sides", async () => {
  const a = fakeSession(CHAT); // offers
  const b = fakeSession(CHAT_UNORDERED); // answers
  const warned = await quietly(async () => {
    const offerer = new PeerLink(a, "b", true);
    const answerer = new PeerLink(b, "a", false);
    await settle();
    const offer = a.signals.find((x) => x.kind === "offer");
    assert.deepEqual(offer.data[HELLO_KEY], serializeHello(helloOf(a.cfg)));
    answerer.onSignal("offer", offer.data);
    await settle();
    assert.equal(answerer.pc.remoteDescription, null, "the offer was never applied");
    assert.ok(!b.signals.some((x) => x.kind === "answer"), "no answer");
    const bye = b.signals.find((x) => x.kind === "bye");
    assert.equal(bye.data.reason, "mismatch");
    assert.deepEqual(b.events, [{
      type: "PeerLost", peerId: "a", reason: "mismatch",
      detail: 'this side vs the peer: channel 3 "chat": ordered false vs true',
    }]);
    assert.ok(answerer.pc.closed && answerer.ended);
    offerer.onSignal("bye", bye.data);
    assert.deepEqual(a.events, [{
      type: "PeerLost", peerId: "b", reason: "mismatch",
      detail: 'this side vs the peer: channel 3 "chat": ordered true vs false',
    }]);
    offerer.onSignal("bye", bye.data);
    assert.equal(a.events.length, 1, "reported once");
  });
  assert.equal(warned.length, 2);
  assert.match(warned[0], /configuration mismatch: .*ordered false vs true/);
});

test("the offerer checks the answer; no hello is accepted; an invalid one is a bad packet", async () => {
  await quietly(async () => {
    const a = fakeSession(CHAT);
    const offerer = new PeerLink(a, "b", true);
    await settle();
    offerer.onSignal("answer", { type: "answer", sdp: "v=0", [HELLO_KEY]: serializeHello(helloOf(cfgOf({ channels: CHAT_UNORDERED }))) });
    await settle();
    assert.equal(offerer.pc.remoteDescription, null);
    assert.equal(a.events[0].reason, "mismatch");
    assert.equal(a.signals.at(-1).kind, "bye");

    const c = fakeSession(CHAT);
    const lenient = new PeerLink(c, "d", false);
    lenient.onSignal("offer", { type: "offer", sdp: "v=0" }); // an older client: no hello
    await settle();
    assert.equal(lenient.pc.remoteDescription.sdp, "v=0");
    assert.ok(c.signals.some((x) => x.kind === "answer" && x.data[HELLO_KEY]));
    assert.deepEqual(c.events, []);
    lenient.onSignal("bye", { reason: "left" }); // a bye that is no mismatch: ignored
    assert.deepEqual(c.events, []);

    const e = fakeSession(CHAT);
    const strict = new PeerLink(e, "f", false);
    strict.onSignal("offer", { type: "offer", sdp: "v=0", [HELLO_KEY]: { v: 1, channels: "lots" } });
    assert.equal(strict.stats().badPackets, 1);
    assert.equal(e.events[0].detail, "invalid hello from the peer: channels must be a list, got \"lots\"");
    const back = mismatchDetail(helloOf(e.cfg), e.signals.at(-1).data);
    assert.equal(back, `the peer refused our configuration: ${e.events[0].detail}`);
    assert.deepEqual(mismatchData(helloOf(e.cfg), "x").hello, serializeHello(helloOf(e.cfg)));
  });
});
