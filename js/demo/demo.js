// Browser player of the pygame demo (demo_game): the same wire messages as
// demo_game/messages.py. Inputs go to the host as state {"k":"in","i":[[seq,[dx,dy]],...]}
// (the last 8, so a lost packet costs nothing); the host answers with snapshots of
// "w" (tick), "p:<peer>" players and "k:<n>" pickups, positions in 0.1 px.
import { connect, InterpolationBuffer } from "../src/netcode.js";

const TICK_RATE = 60;
const SNAPSHOT_RATE = 30; // the host sends a snapshot every 2nd tick
const REDUNDANCY = 8;
const Q = 10; // position quantum: 0.1 px
const COLORS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6"];

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
if (params.get("lobby")) $("lobby").value = params.get("lobby");
if (params.get("room")) $("room").value = params.get("room");

const keys = new Set();
addEventListener("keydown", (e) => keys.add(e.key.toLowerCase()));
addEventListener("keyup", (e) => keys.delete(e.key.toLowerCase()));
const axis = (neg, pos) => (pos.some((k) => keys.has(k)) ? 1 : 0) - (neg.some((k) => keys.has(k)) ? 1 : 0);

const game = {
  session: null,
  host: null,
  seq: 0,
  inputs: [], // [seq, [dx, dy]] newest last
  buffer: new InterpolationBuffer({ snapshotRate: SNAPSHOT_RATE }),
  rtts: [],
  snapshots: 0,
};
window.demo = game; // for tests and the console

async function join(lobby, room) {
  $("status").textContent = "joining...";
  // ?loopback=1 (tests, one machine): announce our host candidates as 127.0.0.1 (see
  // js/test/harness.html: Chromium binds the wildcard address, aioice checks sources).
  const loopback = (c) =>
    / typ host /.test(c.candidate) && /^[0-9.]+$/.test(c.address ?? "")
      ? { ...c.toJSON(), candidate: c.candidate.replace(` ${c.address} `, " 127.0.0.1 ") }
      : false;
  const options = params.get("loopback") ? { candidateFilter: loopback } : {};
  const session = await connect(lobby, { room, ...options });
  game.session = session;
  $("status").textContent = `room ${session.room}, you are ${session.peerId}`;
  session.on("EventReceived", (e) => {
    if (e.data && e.data.k === "welcome") game.host = e.peerId;
  });
  session.on("SnapshotReceived", (e) => {
    game.host = e.peerId;
    game.snapshots++;
    game.buffer.push(performance.now() / 1000, e.entities);
  });
  session.on("StatsUpdated", (e) => {
    if (e.peerId !== game.host) return;
    game.rtts.push(e.stats.rttMs);
    if (game.rtts.length > 60) game.rtts.shift();
    game.buffer.delay = 2 / SNAPSHOT_RATE + (2 * e.stats.jitterMs) / 1000;
    $("stats").textContent = `rtt ${e.stats.rttMs.toFixed(1)} ms, loss ${(e.stats.loss * 100).toFixed(0)} %`;
  });
  setInterval(tick, 1000 / TICK_RATE);
  requestAnimationFrame(draw);
}

function tick() {
  if (!game.host) return;
  const dx = axis(["arrowleft", "a"], ["arrowright", "d"]);
  const dy = axis(["arrowup", "w"], ["arrowdown", "s"]);
  game.inputs.push([game.seq++, [dx, dy]]);
  if (game.inputs.length > REDUNDANCY) game.inputs.shift();
  game.session.sendState({ k: "in", i: game.inputs }, game.host);
}

function draw() {
  const ctx = $("arena").getContext("2d");
  ctx.clearRect(0, 0, 960, 600);
  const world = game.buffer.sample(performance.now() / 1000);
  for (const [id, e] of world) {
    if (typeof id !== "string" || id === "w") continue;
    const mine = id === `p:${game.session.peerId}`;
    ctx.beginPath();
    ctx.arc(e.x / Q, e.y / Q, id.startsWith("k:") ? 9 : 18, 0, 2 * Math.PI);
    ctx.fillStyle = id.startsWith("k:") ? "#ddd" : COLORS[(e.c ?? 0) % COLORS.length];
    ctx.fill();
    if (mine) (ctx.strokeStyle = "#fff"), (ctx.lineWidth = 3), ctx.stroke();
  }
  drawNetGraph();
  requestAnimationFrame(draw);
}

function drawNetGraph() {
  const ctx = $("net").getContext("2d");
  ctx.clearRect(0, 0, 240, 60);
  const max = Math.max(5, ...game.rtts);
  ctx.strokeStyle = "#4cf";
  ctx.beginPath();
  game.rtts.forEach((r, i) => ctx.lineTo(i * 4, 60 - (r / max) * 55));
  ctx.stroke();
}

$("joinForm").addEventListener("submit", (e) => {
  e.preventDefault();
  join($("lobby").value, $("room").value.trim()).catch((err) => ($("status").textContent = String(err)));
});
if (params.get("room")) join($("lobby").value, $("room").value.trim()).catch((err) => ($("status").textContent = String(err)));
