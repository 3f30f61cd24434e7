// The lobby client (PROTOCOL.md 1) against a scripted fake lobby: requests and replies,
// automatic rejoin after a websocket drop, quick match, owner controls, listRooms.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConnectTimeout, LobbyError, connect, listRooms } from "../src/netcode.js";

/** A scripted lobby: ``answer(ws, msg)`` replies to each client message. */
class FakeLobby {
  constructor(answer) {
    this.answer = answer;
    this.sockets = [];
    this.ids = 0;
    this.refuse = false; // true: new sockets close before welcome (lobby down)
  }
  install() {
    const lobby = this;
    globalThis.WebSocket = class FakeWS {
      static OPEN = 1;
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.sent = [];
        lobby.sockets.push(this);
        setTimeout(() => {
          if (lobby.refuse) return this.drop(1006);
          this.readyState = 1;
          this.deliver({ type: "welcome", v: 1, peer_id: `w${++lobby.ids}`, ice_servers: [] });
        }, 1);
      }
      send(text) {
        const msg = JSON.parse(text);
        this.sent.push(msg);
        setTimeout(() => lobby.answer(this, msg), 1);
      }
      deliver(msg) {
        if (this.readyState === 1) this.onmessage?.({ data: JSON.stringify(msg) });
      }
      close(code = 1000, reason = "") {
        this.drop(code, reason);
      }
      drop(code = 1006, reason = "") {
        if (this.readyState === 3) return;
        this.readyState = 3;
        this.onclose?.({ code, reason });
      }
    };
    return this;
  }
  get last() {
    return this.sockets[this.sockets.length - 1];
  }
}

const joined = (msg, extra = {}) => ({
  type: "room_joined", rid: msg.rid, room: "K7QX2M", peer_id: "me00000000", peers: [], reconnecting: [],
  max_players: 8, private: false, metadata: {}, topology: "mesh", host: "me00000000",
  token: "t".repeat(32), token_expires_s: 30, locked: false, ...extra,
});

function basic(ws, msg) {
  if (msg.type === "create_room" || msg.type === "join_room" || msg.type === "rejoin") ws.deliver(joined(msg));
  else if (["kick", "lock_room", "update_room"].includes(msg.type)) ws.deliver({ type: "ok", rid: msg.rid });
}

function waitFor(s, type, ms = 2000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type}`)), ms);
    const off = s.on(type, (ev) => (clearTimeout(timer), off(), resolve(ev)));
  });
}

test("connect creates a room; token, metadata and host are kept from room_joined", async () => {
  const lobby = new FakeLobby(basic).install();
  const s = await connect("ws://lobby.test/", { metadata: { game: "arena" }, maxPlayers: 4, token: "secret" });
  const req = lobby.last.sent[0];
  assert.deepEqual([req.type, req.max_players, req.metadata, req.v], ["create_room", 4, { game: "arena" }, 1]);
  assert.match(lobby.last.url, /token=secret/);
  assert.equal(s.reconnectToken, "t".repeat(32));
  assert.equal(s.isHost, true);
  await s.close();
  assert.equal(lobby.last.readyState, 3);
});

test("a dropped lobby websocket is rejoined with the token; same peer id, LobbyRejoined", async () => {
  const lobby = new FakeLobby(basic).install();
  const s = await connect("ws://lobby.test/", { room: "k7qx2m" });
  const first = lobby.last;
  lobby.refuse = true; // the first attempts find the lobby down: retried with backoff
  const reconnecting = waitFor(s, "LobbyReconnecting");
  const rejoined = waitFor(s, "LobbyRejoined");
  first.drop(1006);
  await reconnecting;
  assert.equal(s.lobbyConnected, false);
  await new Promise((r) => setTimeout(r, 30));
  lobby.refuse = false;
  const ev = await rejoined;
  assert.equal(ev.peerId, "me00000000");
  const rejoin = lobby.last.sent[0];
  assert.deepEqual([rejoin.type, rejoin.token, rejoin.room], ["rejoin", "t".repeat(32), "K7QX2M"]);
  assert.ok(lobby.sockets.length >= 3, "attempts while the lobby was down");
  assert.equal(s.lobbyConnected, true);
  await s.lock(true); // requests work on the new socket
  await s.close();
});

test("rejoin refused (bad_token) or a normal close from the lobby: LobbyClosed, no retry", async () => {
  const lobby = new FakeLobby((ws, msg) => {
    if (msg.type === "rejoin") ws.deliver({ type: "error", rid: msg.rid, code: "bad_token", message: "expired" });
    else basic(ws, msg);
  }).install();
  const s = await connect("ws://lobby.test/", { room: "K7QX2M" });
  const closed = waitFor(s, "LobbyClosed");
  lobby.last.drop(1006);
  assert.equal((await closed).reason, "bad_token");
  const n = lobby.sockets.length;
  const s2 = await connect("ws://lobby.test/", { room: "K7QX2M" });
  const closed2 = waitFor(s2, "LobbyClosed");
  lobby.last.drop(1000, "replaced by a newer connection");
  assert.equal((await closed2).code, 1000);
  assert.equal(lobby.sockets.length, n + 1, "no rejoin attempt after 1000");
  await s.close();
  await s2.close();
});

test("connect with rejoinToken sends rejoin (a page reload takes its seat back)", async () => {
  const lobby = new FakeLobby(basic).install();
  const s = await connect("ws://lobby.test/", { rejoinToken: "x".repeat(32), room: "K7QX2M" });
  assert.deepEqual(lobby.last.sent[0].type, "rejoin");
  assert.equal(lobby.last.sent[0].token, "x".repeat(32));
  assert.equal(s.peerId, "me00000000");
  await s.close();
});

test("quick match: waiting progress, then the room; a timeout cancels the request", async () => {
  const lobby = new FakeLobby((ws, msg) => {
    if (msg.type !== "quick_match") return;
    ws.deliver({ type: "quick_match_waiting", rid: msg.rid, game: msg.game, size: msg.size, topology: "mesh", waiting: 1 });
    if (msg.game === "arena") setTimeout(() => ws.deliver(joined(msg, { private: true })), 5);
  }).install();
  const s = await connect("ws://lobby.test/", { quickMatch: { game: "arena", size: 2 } });
  const req = lobby.last.sent[0];
  assert.deepEqual([req.type, req.game, req.size, req.topology], ["quick_match", "arena", 2, "mesh"]);
  assert.equal(s.room, "K7QX2M");
  assert.ok(s.poll().some((e) => e.type === "QuickMatchWaiting" && e.waiting === 1));
  await s.close();
  await assert.rejects(connect("ws://lobby.test/", { quickMatch: { game: "none", size: 2, timeoutMs: 30 } }), ConnectTimeout);
  assert.equal(lobby.last.sent[1].type, "cancel_quick_match");
});

test("owner controls: ok resolves, a refusal rejects with the lobby's code", async () => {
  const lobby = new FakeLobby((ws, msg) => {
    if (msg.type === "kick" && msg.peer === "zz") {
      ws.deliver({ type: "error", rid: msg.rid, code: "not_owner", message: "only the host" });
    } else basic(ws, msg);
  }).install();
  const s = await connect("ws://lobby.test/", {});
  await s.kick("ab", "afk");
  await s.lock();
  await s.updateMetadata({ map: 2 });
  const sent = lobby.last.sent.slice(1).map((m) => [m.type, m.peer ?? m.locked ?? m.metadata]);
  assert.deepEqual(sent, [["kick", "ab"], ["lock_room", true], ["update_room", { map: 2 }]]);
  const err = await s.kick("zz").catch((e) => e);
  assert.ok(err instanceof LobbyError && err.code === "not_owner");
  lobby.last.deliver({ type: "room_updated", room: "K7QX2M", metadata: { map: 3 }, locked: true });
  assert.deepEqual([s.metadata, s.locked], [{ map: 3 }, true]);
  assert.ok(s.poll().some((e) => e.type === "RoomUpdated"));
  await s.close();
});

test("kicked: Kicked event, token dropped, no rejoin when the socket then drops", async () => {
  const lobby = new FakeLobby(basic).install();
  const s = await connect("ws://lobby.test/", { room: "K7QX2M" });
  lobby.last.deliver({ type: "kicked", room: "K7QX2M", reason: "afk" });
  assert.equal(s.reconnectToken, null);
  const closed = waitFor(s, "LobbyClosed");
  lobby.last.drop(1006);
  await closed;
  assert.deepEqual(s.poll().map((e) => e.type), ["Kicked"]);
  await s.close();
});

test("listRooms: one request on its own socket, closed afterwards; hostile replies ignored", async () => {
  const rooms = [{ room: "AB2345", players: 1, max_players: 4, metadata: { game: "g" }, topology: "mesh", locked: false }];
  const lobby = new FakeLobby((ws, msg) => {
    ws.onmessage?.({ data: "not json" });
    ws.onmessage?.({ data: "[1,2]" });
    ws.deliver({ type: "ok", rid: 999 });
    if (msg.type === "list_rooms") ws.deliver({ type: "room_list", rid: msg.rid, rooms });
  }).install();
  assert.deepEqual(await listRooms("ws://lobby.test/", { game: "g" }), rooms);
  assert.deepEqual(lobby.last.sent[0], { type: "list_rooms", game: "g", v: 1, rid: 1 });
  assert.equal(lobby.last.readyState, 3);
  lobby.refuse = true;
  await assert.rejects(listRooms("ws://lobby.test/", { timeoutMs: 50 }), LobbyError);
});
