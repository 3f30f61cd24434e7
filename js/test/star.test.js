// Star host migration (js/src/star.js, Session._hostChanged): the plan, and a Session
// over a scripted lobby and fake RTCPeerConnections rebuilding its links around the
// new host as netcode/net/session.py does (the real thing: test_browser_star_migration.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "../src/netcode.js";
import { hostChangePlan } from "../src/star.js";
import { FakePc } from "./fakes.js";

const kinds = (o) => new Map(Object.entries(o));

test("plan, a client: offer to the new host, the old one retired, ended links via the host", () => {
  const plan = hostChangePlan({ me: "me", host: "c", previous: "h", peers: kinds({ h: "live", c: "via", d: "via", e: "ended" }) });
  assert.deepEqual(plan, { retire: ["h"], toVia: ["e"], answer: [], offerTo: "c" });
  const dead = hostChangePlan({ me: "me", host: "c", previous: "h", peers: kinds({ h: "ended", c: "via" }) });
  assert.deepEqual(dead, { retire: [], toVia: [], answer: [], offerTo: "c" }, "a dead host link is left as it is");
});

test("plan, the new host: a link per client waiting for its offer", () => {
  const plan = hostChangePlan({ me: "me", host: "me", previous: "h", peers: kinds({ h: "live", a: "via", b: "via", x: "ended" }) });
  assert.deepEqual(plan, { retire: ["h"], toVia: [], answer: ["a", "b"], offerTo: null });
});

test("plan, the old host (back after the lobby moved on): live links kept, offer to the new one", () => {
  const plan = hostChangePlan({ me: "me", host: "a", previous: "me", peers: kinds({ a: "live", b: "live", c: "ended" }) });
  assert.deepEqual(plan, { retire: [], toVia: ["c"], answer: [], offerTo: "a" });
});

// ------------------------------------------------------------------ a Session, no browser


/** Lobby sockets that answer every request with ``box.joined`` and record what is sent. */
function install(joined) {
  const box = { joined, sockets: [] };
  globalThis.RTCPeerConnection = FakePc;
  globalThis.WebSocket = class FakeWS {
    static OPEN = 1;
    constructor() {
      this.readyState = 1;
      this.sent = [];
      box.ws = this;
      box.sockets.push(this);
      setTimeout(() => this.deliver({ type: "welcome", v: 1, peer_id: "me", ice_servers: [] }), 1);
    }
    send(text) {
      const msg = JSON.parse(text);
      this.sent.push(msg);
      if (msg.rid !== undefined) setTimeout(() => this.deliver({ ...box.joined, rid: msg.rid }), 1);
    }
    deliver(msg) {
      this.onmessage?.({ data: JSON.stringify(msg) });
    }
    close() {
      this.readyState = 3;
    }
    drop() {
      this.readyState = 3;
      this.onclose?.({ code: 1006, reason: "" });
    }
  };
  return box;
}

async function starSession(host, peers) {
  const box = install({
    type: "room_joined", room: "K7QX2M", peer_id: "me", peers, reconnecting: [], max_players: 8,
    private: false, metadata: {}, topology: "star", host, token: "t".repeat(32), token_expires_s: 30, locked: false,
  });
  const s = await connect("ws://lobby.test/", { room: "K7QX2M" });
  const log = [];
  const types = ["PeerJoined", "PeerConnected", "PeerLost", "PeerLeft", "HostChanged", "LobbyRejoined"];
  for (const type of types) s.on(type, (e) => log.push(e));
  return { s, ws: box.ws, log, box };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 5));
const open = (link) => {
  for (const ch of link.channels.values()) (ch.readyState = "open"), ch.onopen();
};
const brief = (log) => log.map((e) => `${e.type} ${e.peerId}${e.detail ? ` (${e.detail})` : ""}`);
const offersTo = (ws) => ws.sent.filter((m) => m.type === "signal" && m.kind === "offer").map((m) => m.to);

test("a star client whose host dies offers to the new host; the other client follows it", async () => {
  const { s, ws, log } = await starSession("h", ["h", "c"]);
  try {
    await settle();
    open(s.links.get("h"));
    s.links.get("h").lose("timeout", "nothing received");
    ws.deliver({ type: "host_changed", room: "K7QX2M", host: "c", previous: "h" });
    await settle();
    assert.equal(s.host, "c");
    assert.deepEqual(offersTo(ws), ["h", "c"], "we offered to the first host, then to the new one");
    assert.deepEqual([...s.viaHost], []);
    assert.equal(s.peers.h.state, "lost");
    open(s.links.get("c"));
    ws.deliver({ type: "peer_left", room: "K7QX2M", peer_id: "h", reason: "timeout" });
    assert.deepEqual(brief(log), [
      "PeerConnected h", "PeerConnected c", // (PeerJoined came before our handlers)
      "PeerLost h (nothing received)", "PeerLost c (via the host)", "HostChanged c", "PeerConnected c", "PeerLeft h",
    ]);
    assert.deepEqual(Object.keys(s.peers), ["c"]);
  } finally {
    await s.close();
  }
});

test("the earliest client becomes the host: it answers every client, the old link is heard as lost", async () => {
  const { s, ws, log } = await starSession("h", ["h", "a", "b"]);
  try {
    await settle();
    open(s.links.get("h"));
    const old = s.links.get("h");
    ws.deliver({ type: "host_changed", room: "K7QX2M", host: "me", previous: "h" });
    assert.ok(s.isHost && old.ended && old.pc.closed);
    assert.deepEqual([...s.links.keys()].sort(), ["a", "b", "h"]);
    ws.deliver({ type: "signal", from: "a", kind: "offer", data: { type: "offer", sdp: "v=0 offer" } });
    await settle();
    assert.equal(s.links.get("a").pc.remoteDescription.sdp, "v=0 offer", "a's offer reached the waiting link");
    const answers = ws.sent.filter((m) => m.type === "signal" && m.kind === "answer").map((m) => m.to);
    assert.deepEqual(answers, ["a"]);
    assert.deepEqual(offersTo(ws), ["h"], "the new host offers to nobody");
    open(s.links.get("a"));
    assert.deepEqual(brief(log).slice(-5), [
      "HostChanged me", "PeerLost h (no longer the host)", "PeerLost a (via the host)", "PeerLost b (via the host)",
      "PeerConnected a",
    ], "the retired link and the peers behind it lost, then connected anew");
    assert.equal(s.peers.b.state, "connecting");
  } finally {
    await s.close();
  }
});

test("a mesh only changes owner; a malformed host_changed is ignored", async () => {
  install({
    type: "room_joined", room: "K7QX2M", peer_id: "me", peers: [], reconnecting: [], max_players: 8,
    private: false, metadata: {}, topology: "mesh", host: "me", token: "t".repeat(32), token_expires_s: 30, locked: false,
  });
  const s = await connect("ws://lobby.test/", { room: "K7QX2M" });
  try {
    s.ws.onmessage({ data: JSON.stringify({ type: "peer_joined", peer_id: "p" }) });
    const link = s.links.get("p");
    s.ws.onmessage({ data: JSON.stringify({ type: "host_changed", host: 5 }) });
    assert.equal(s.host, "me");
    s.ws.onmessage({ data: JSON.stringify({ type: "host_changed", host: "p", previous: "me" }) });
    assert.equal(s.host, "p");
    assert.equal(s.links.get("p"), link, "the mesh link is kept");
  } finally {
    await s.close();
  }
});

test("a host change while our lobby socket was down is applied on rejoin: one offer to the new host", async () => {
  const { s, ws, log, box } = await starSession("h", ["h", "c", "d"]);
  try {
    await settle();
    open(s.links.get("h"));
    s.links.get("h").lose("timeout", "nothing received");
    box.joined = { ...box.joined, host: "c", peers: ["h", "c", "d"], reconnecting: ["h"] };
    ws.drop();
    for (let i = 0; i < 100 && !log.some((e) => e.type === "LobbyRejoined"); i++) await settle();
    await settle();
    const after = box.sockets[box.sockets.length - 1];
    assert.notEqual(after, ws, "a new lobby socket");
    assert.deepEqual(brief(log).slice(-2), ["HostChanged c", "LobbyRejoined me"]);
    assert.equal(s.host, "c");
    assert.deepEqual(offersTo(after), ["c"], "exactly one offer, to the new host");
    assert.deepEqual([...s.viaHost], ["d"]);
    assert.equal(s.peers.h.state, "lost");
  } finally {
    await s.close();
  }
});
