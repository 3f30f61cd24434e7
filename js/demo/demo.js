// Browser player of the pygame demo (demo_game): the same wire messages as
// demo_game/messages.py. Inputs go to the host as state {"k":"in","i":[[seq,[dx,dy]],...]}
// (the newest 8 pending, so a lost packet costs nothing); the host answers with
// snapshots of "w" (tick), "p:<peer>" players ("a": our newest input it applied) and
// "k:<n>" pickups, positions in 0.1 px. Our own circle is predicted (predict.js),
// everyone else interpolated; the net graph shows RTT, loss and ICE path per peer.
//
// Query string: ?room=CODE (joins at once), lobby=ws://HOST:PORT/ (default: the page's
// own origin, as the lobby serves this page at /play), token=... (a lobby token),
// loopback=1 (tests on one machine). A reload takes the seat back (sessionStorage).
import { InterpolationBuffer, LobbyError, connect } from "../src/netcode.js";
import { DT, LocalPlayer, PLAYER_RADIUS } from "./predict.js";
import { NetGraph, selectedPath } from "./netgraph.js";

const SNAPSHOT_RATE = 30; // the host sends a snapshot every 2nd tick
const Q = 10; // position quantum: 0.1 px
const COLORS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6"];
const MAX_CATCH_UP = 5; // ticks per timer callback after a stall (then we drop time)

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

function defaultLobby() {
  if (location.protocol !== "http:" && location.protocol !== "https:") return "ws://127.0.0.1:8765/";
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
}
$("lobby").value = params.get("lobby") || defaultLobby();
if (params.get("room")) $("room").value = params.get("room");

// ------------------------------------------------------------------ input

const keys = new Set();
addEventListener("keydown", (e) => {
  if (e.target instanceof HTMLInputElement) return; // typing a room code steers nothing
  keys.add(e.key.toLowerCase());
  if (e.key.startsWith("Arrow")) e.preventDefault(); // no page scrolling while playing
});
addEventListener("keyup", (e) => keys.delete(e.key.toLowerCase()));
addEventListener("blur", () => keys.clear());
const axis = (neg, pos) => (pos.some((k) => keys.has(k)) ? 1 : 0) - (neg.some((k) => keys.has(k)) ? 1 : 0);

let touch = null; // arena coordinates of a finger: steer towards it
function onTouch(e) {
  e.preventDefault();
  const t = e.touches[0];
  if (!t) return void (touch = null);
  const r = $("arena").getBoundingClientRect();
  touch = { x: ((t.clientX - r.left) / r.width) * 960, y: ((t.clientY - r.top) / r.height) * 600 };
}
for (const kind of ["touchstart", "touchmove", "touchend", "touchcancel"]) {
  $("arena").addEventListener(kind, onTouch, { passive: false });
}

function currentInput() {
  const me = game.me.drawn();
  if (touch && me) {
    const toward = (d) => (Math.abs(d) < PLAYER_RADIUS / 2 ? 0 : Math.sign(d));
    return [toward(touch.x - me.x), toward(touch.y - me.y)];
  }
  return [axis(["arrowleft", "a"], ["arrowright", "d"]), axis(["arrowup", "w"], ["arrowdown", "s"])];
}

// ------------------------------------------------------------------ state

/** As demo_game/client.py's: positions interpolated, 0.1 s of extrapolation when dry. */
function newBuffer() {
  return new InterpolationBuffer({ snapshotRate: SNAPSHOT_RATE, fields: ["x", "y"], maxExtrapolation: 0.1 });
}

const game = {
  session: null,
  host: null,
  me: new LocalPlayer(),
  buffer: newBuffer(),
  latest: null, // newest snapshot's entities (pickups, scores)
  lastTick: -1,
  snapshots: 0,
  staleSnapshots: 0,
  badSnapshots: 0,
  lobbyEvents: [], // LobbyReconnecting / LobbyRejoined / LobbyClosed, for the page and tests
  graph: new NetGraph(),
};
window.demo = game; // for tests and the console

const finite = (...v) => v.every((n) => typeof n === "number" && Number.isFinite(n));

// ------------------------------------------------------------------ joining

const seatKey = (lobby, room) => `netcode-demo-seat:${lobby}:${room.trim().toUpperCase()}`;

/** Join ``room``; after a reload, take the seat this tab had (its token is in sessionStorage). */
async function open(lobby, room, options) {
  const key = seatKey(lobby, room);
  const saved = sessionStorage.getItem(key);
  if (saved) {
    try {
      return await connect(lobby, { ...options, room, rejoinToken: saved });
    } catch (err) {
      if (!(err instanceof LobbyError)) throw err;
      sessionStorage.removeItem(key); // expired, kicked, room gone: join as someone new
    }
  }
  return connect(lobby, { ...options, room });
}

async function join(lobby, room) {
  if (game.joining) return; // one seat per tab
  game.joining = true;
  $("status").textContent = "joining...";
  // ?loopback=1 (tests, one machine): announce our host candidates as 127.0.0.1 (see
  // js/test/harness.html: Chromium binds the wildcard address, aioice checks sources).
  const loopback = (c) =>
    / typ host /.test(c.candidate) && /^[0-9.]+$/.test(c.address ?? "")
      ? { ...c.toJSON(), candidate: c.candidate.replace(` ${c.address} `, " 127.0.0.1 ") }
      : false;
  const options = params.get("loopback") ? { candidateFilter: loopback } : {};
  if (params.get("token")) options.token = params.get("token");
  const session = await open(lobby, room, options);
  game.session = session;
  game.host = session.host;
  sessionStorage.setItem(seatKey(lobby, room), session.reconnectToken);
  const status = (extra = "") => {
    $("status").textContent = `room ${session.room}, you are ${session.peerId}${extra}`;
  };
  status();
  session.on("SnapshotReceived", onSnapshot);
  session.on("StatsUpdated", onStats);
  session.on("HostChanged", (e) => {
    // Another peer runs the match now (demo_game/client.py new_host): its tick count and
    // clock are not the old host's, so its first snapshot is taken whatever its tick
    // and the interpolation history starts afresh; our prediction carries on.
    game.host = e.peerId;
    game.lastTick = -Infinity;
    game.buffer = newBuffer();
  });
  for (const type of ["PeerLeft", "PeerLost"]) session.on(type, (e) => game.graph.forget(e.peerId));
  session.on("Kicked", (e) => {
    sessionStorage.removeItem(seatKey(lobby, room));
    status(` (kicked: ${e.reason || "no reason"})`);
  });
  for (const type of ["LobbyReconnecting", "LobbyRejoined", "LobbyClosed"]) {
    session.on(type, (e) => {
      game.lobbyEvents.push(e);
      status(type === "LobbyRejoined" ? "" : ` (${type === "LobbyClosed" ? "lobby gone" : "lobby reconnecting..."})`);
    });
  }
  startTicking();
  setInterval(updatePaths, 2000);
  requestAnimationFrame(draw);
}

// ------------------------------------------------------------------ network events

function onSnapshot(e) {
  if (e.peerId !== game.host) return; // only the host's word counts
  const w = e.entities.get("w");
  if (!w || !finite(w.t)) return void game.badSnapshots++;
  if (w.t <= game.lastTick) return void game.staleSnapshots++; // unordered channel: older is useless
  game.lastTick = w.t;
  game.snapshots++;
  game.latest = e.entities;
  const mine = e.entities.get(`p:${game.session.peerId}`);
  if (mine && finite(mine.x, mine.y, mine.vx, mine.vy, mine.a)) game.me.onSnapshot(mine);
  game.buffer.push(performance.now() / 1000, e.entities);
}

function onStats(e) {
  game.graph.record(e.peerId, e.stats);
  if (e.peerId === game.host) game.buffer.delay = 2 / SNAPSHOT_RATE + (2 * e.stats.jitterMs) / 1000;
}

async function updatePaths() {
  for (const [pid, link] of game.session.links) {
    if (link.state !== "connected") continue;
    game.graph.setPath(pid, await selectedPath(link.pc).catch(() => null));
  }
}

// ------------------------------------------------------------------ ticks and drawing

function startTicking() {
  // A fixed 60 Hz simulation whatever the timer does: run the ticks that are due.
  let last = performance.now();
  let due = 0;
  setInterval(() => {
    const t = performance.now();
    due += (t - last) / 1000;
    last = t;
    let n = 0;
    for (; due >= DT && n < MAX_CATCH_UP; n++) (due -= DT), tick();
    if (n === MAX_CATCH_UP) due = 0;
  }, 1000 / 120);
}

function tick() {
  const packet = game.me.tick(currentInput());
  if (packet && game.host) game.session.sendState(packet, game.host);
}

function circle(ctx, x, y, r, color, outline = false) {
  ctx.beginPath();
  ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.fillStyle = color;
  ctx.fill();
  if (outline) (ctx.strokeStyle = "#fff"), (ctx.lineWidth = 3), ctx.stroke();
}

function draw() {
  const ctx = $("arena").getContext("2d");
  ctx.clearRect(0, 0, 960, 600);
  const mineId = `p:${game.session.peerId}`;
  for (const [id, e] of game.latest ?? []) {
    if (typeof id === "string" && id.startsWith("k:") && finite(e.x, e.y)) circle(ctx, e.x / Q, e.y / Q, 9, "#ddd");
  }
  for (const [id, e] of game.buffer.sample(performance.now() / 1000)) {
    if (typeof id !== "string" || !id.startsWith("p:") || id === mineId || !finite(e.x, e.y)) continue;
    circle(ctx, e.x / Q, e.y / Q, PLAYER_RADIUS, COLORS[(e.c ?? 0) % COLORS.length]);
  }
  const me = game.me.drawn();
  const mine = game.latest?.get(mineId);
  if (me) circle(ctx, me.x, me.y, PLAYER_RADIUS, COLORS[(mine?.c ?? 0) % COLORS.length], true);
  $("score").textContent = mine ? `score ${mine.s}` : "";
  game.graph.draw($("net"));
  requestAnimationFrame(draw);
}

$("joinForm").addEventListener("submit", (e) => {
  e.preventDefault();
  join($("lobby").value, $("room").value.trim()).catch((err) => ($("status").textContent = String(err)));
});
if (params.get("room")) join($("lobby").value, $("room").value.trim()).catch((err) => ($("status").textContent = String(err)));
