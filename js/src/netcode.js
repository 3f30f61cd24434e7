// netcode browser client: lobby (PROTOCOL.md 1), mesh of RTCPeerConnections with
// negotiated `state`/`events` channels, STATE/EVENT/SNAPSHOT/CHUNK/ACK/PING/PONG/BYE
// (PROTOCOL.md 2, STATE_SYNC.md). Plays in the same room as Python netcode sessions.
//
//   import { connect } from "./netcode.js";
//   const s = await connect("ws://127.0.0.1:8765/", { room: "K7QX2M" });
//   s.sendState({ x: 1.5 });  for (const ev of s.poll()) ...;  await s.close();

import { PeerLink, now, nowUs } from "./link.js";
import { DEFAULT_LIMITS, EncodeError, NetcodeError, encode } from "./msgpack.js";
import { MsgType, encodeEventPackets, serialize } from "./wire.js";

export * from "./msgpack.js";
export { InterpolationBuffer } from "./interpolation.js";

export class LobbyError extends NetcodeError {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}
export class ConnectTimeout extends NetcodeError {}

export const DEFAULT_CHANNELS = Object.freeze([
  Object.freeze({ label: "state", id: 1, ordered: false, maxRetransmits: 0 }),
  Object.freeze({ label: "events", id: 2, ordered: true }),
]);

const DEFAULTS = Object.freeze({
  channels: DEFAULT_CHANNELS,
  iceServers: null, // null: the lobby's welcome.ice_servers
  iceTransportPolicy: "all", // or "relay", as SessionConfig.ice_transport_policy
  candidateFilter: null, // (RTCIceCandidate) => bool: which own candidates to signal
  limits: DEFAULT_LIMITS,
  quantize: null,
  connectTimeoutMs: 10_000,
  lobbyTimeoutMs: 10_000,
  heartbeatIntervalMs: 250,
  peerTimeoutMs: 3_000,
  statsIntervalMs: 1_000,
  stateBufferThreshold: 2_400,
  reliableBufferLimit: 65_536,
  ackEvery: 16,
  maxQueuedStates: 16,
  maxQueuedEvents: 1_024,
  budget: Object.freeze({
    stateMsgsPerS: 360, stateBytesPerS: 512_000, eventMsgsPerS: 1_000,
    eventBytesPerS: 2_000_000, pingsAnsweredPerS: 8, burstS: 2, abuseAfterS: 1,
  }),
});

const STATEISH = new Set(["StateReceived", "SnapshotReceived", "StatsUpdated"]);

/** Join (``room``) or create a room; resolves to a Session once the lobby answered. */
export async function connect(url, options = {}) {
  const cfg = { ...DEFAULTS, ...options, budget: { ...DEFAULTS.budget, ...(options.budget ?? {}) } };
  const session = new Session(cfg);
  try {
    await session._open(url, options);
  } catch (err) {
    await session.close(); // no half-open lobby socket or timer left behind
    throw err;
  }
  return session;
}

export class Session {
  constructor(cfg) {
    this.cfg = cfg;
    this.peerId = null;
    this.room = null;
    this.links = new Map();
    this.viaHost = new Set();
    this.topology = "mesh";
    this.host = null;
    this.queue = [];
    this.counts = new Map(); // peerId -> {states, events} waiting in the queue
    this.listeners = new Map();
    this.waiters = [];
    this.closed = false;
    this._rid = 0;
    this._pending = new Map();
    this._msgId = 0;
  }

  // ------------------------------------------------------------------ lobby

  async _open(url, { room = null, create = false, maxPlayers = 8, metadata = {}, token = null, topology = null } = {}) {
    const u = new URL(url);
    if (token) u.searchParams.set("token", token);
    this.ws = new WebSocket(u.toString());
    const welcome = new Promise((resolve, reject) => {
      this._welcome = resolve;
      this.ws.onerror = () => reject(new ConnectTimeout(`lobby ${url} unreachable`));
      this.ws.onclose = (e) => reject(new LobbyError("closed", `lobby closed (${e.code} ${e.reason})`));
    });
    this.ws.onmessage = (e) => this._onLobby(e.data);
    const msg = await withTimeout(welcome, this.cfg.lobbyTimeoutMs, "no welcome from the lobby");
    this.peerId = msg.peer_id;
    this.iceServers = this.cfg.iceServers ?? (msg.ice_servers ?? []);
    this.ws.onclose = () => this._lobbyClosed();
    const req = room && !create
      ? { type: "join_room", room }
      : { type: "create_room", max_players: maxPlayers, metadata, ...(topology ? { topology } : {}) };
    const joined = await withTimeout(this._request(req), this.cfg.lobbyTimeoutMs, "no answer from the lobby");
    this.room = joined.room;
    this.peerId = joined.peer_id;
    this.topology = joined.topology ?? "mesh";
    this.host = joined.host ?? null;
    this._timer = setInterval(() => this._tick(), Math.min(50, this.cfg.heartbeatIntervalMs));
    for (const pid of joined.peers) this._addPeer(pid, true);
  }

  _request(msg) {
    const rid = ++this._rid;
    this.ws.send(JSON.stringify({ ...msg, v: 1, rid }));
    return new Promise((resolve, reject) => this._pending.set(rid, { resolve, reject }));
  }

  _onLobby(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg === null || typeof msg !== "object") return;
    const waiter = msg.rid !== undefined ? this._pending.get(msg.rid) : undefined;
    if (waiter) {
      this._pending.delete(msg.rid);
      if (msg.type === "error") waiter.reject(new LobbyError(msg.code, msg.message));
      else waiter.resolve(msg);
      return;
    }
    switch (msg.type) {
      case "welcome":
        return this._welcome?.(msg);
      case "peer_joined":
        return this._addPeer(msg.peer_id, false);
      case "kicked":
        // Out of the room (the lobby connection stays): say BYE and drop every link.
        this._emit({ type: "Kicked", reason: msg.reason ?? "" });
        for (const link of this.links.values()) link.goodbye();
        this.links.clear();
        this.viaHost.clear();
        return;
      case "host_changed":
        this.host = msg.host ?? this.host;
        return;
      case "peer_left": {
        if (this.viaHost.delete(msg.peer_id)) {
          this._emit({ type: "PeerLeft", peerId: msg.peer_id, reason: msg.reason ?? "left" });
        }
        const link = this.links.get(msg.peer_id);
        if (link && !link.ended) link.end("left", msg.reason ?? "left");
        this.links.delete(msg.peer_id);
        return;
      }
      case "signal":
        return this.links.get(msg.from)?.onSignal(msg.kind, msg.data);
      default:
        return; // unknown server messages are ignored (PROTOCOL.md 1.5)
    }
  }

  _lobbyClosed() {
    if (!this.closed) this._emit({ type: "LobbyClosed" });
  }

  _signal(to, kind, data) {
    if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: "signal", v: 1, to, kind, data }));
    }
  }

  _addPeer(pid, offer) {
    if (this.links.has(pid) || pid === this.peerId || this.viaHost.has(pid)) return;
    this._emit({ type: "PeerJoined", peerId: pid });
    // Star rooms (lobby topology "star"): a client links to the host only. Messages
    // the host relays from other clients are not supported by this client yet.
    if (this.topology === "star" && this.host !== this.peerId && pid !== this.host) {
      this.viaHost.add(pid);
      const hostLink = this.links.get(this.host);
      if (hostLink?.state === "connected") this._emit({ type: "PeerConnected", peerId: pid, connectMs: 0 });
      return;
    }
    this.links.set(pid, new PeerLink(this, pid, offer));
  }

  // ------------------------------------------------------------------ events

  _emit(ev) {
    const fns = this.listeners.get(ev.type);
    if (fns && fns.size) {
      for (const fn of fns) fn(ev);
      return;
    }
    const w = this.waiters.shift();
    if (w) return w(ev);
    this.queue.push(ev);
    if (ev.peerId !== undefined) this._bound(ev);
  }

  _bound(ev) {
    // Per-peer counts of what waits for poll(): O(1) per event, except dropping the
    // oldest state of a peer, which scans the queue once per drop.
    let c = this.counts.get(ev.peerId);
    if (!c) this.counts.set(ev.peerId, (c = { states: 0, events: 0 }));
    if (STATEISH.has(ev.type)) {
      if (++c.states > this.cfg.maxQueuedStates) {
        const i = this.queue.findIndex((e) => e.peerId === ev.peerId && STATEISH.has(e.type));
        this.queue.splice(i, 1);
        c.states--;
      }
    } else if (ev.type === "EventReceived" && ++c.events > this.cfg.maxQueuedEvents) {
      this.links.get(ev.peerId)?.lose("overflow", `${c.events} events queued`);
    }
  }

  _unbound(ev) {
    const c = ev.peerId === undefined ? undefined : this.counts.get(ev.peerId);
    if (!c) return;
    if (STATEISH.has(ev.type)) c.states--;
    else if (ev.type === "EventReceived") c.events--;
  }

  /** Register ``fn`` for events of ``type`` ("StateReceived", ...); those skip poll(). */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  /** Every queued event, oldest first. */
  poll() {
    const out = this.queue;
    this.queue = [];
    this.counts.clear();
    return out;
  }

  /** The next event (waits for one); rejects with ConnectTimeout after ``timeoutMs``. */
  nextEvent(timeoutMs = null) {
    if (this.queue.length) {
      const ev = this.queue.shift();
      this._unbound(ev);
      return Promise.resolve(ev);
    }
    const p = new Promise((resolve) => this.waiters.push(resolve));
    return timeoutMs === null ? p : withTimeout(p, timeoutMs, "no event");
  }

  get peers() {
    const out = {};
    for (const [pid, link] of this.links) out[pid] = { state: link.state };
    const host = this.links.get(this.host);
    for (const pid of this.viaHost) out[pid] = { state: host ? host.state : "connecting", viaHost: true };
    return out;
  }

  stats(peerId) {
    const link = this.links.get(peerId);
    if (!link) throw new NetcodeError(`no peer ${peerId}`);
    return link.stats();
  }

  // ------------------------------------------------------------------ sending

  _targets(to) {
    const all = [...this.links.values()].filter((l) => l.state === "connected");
    return to == null ? all : all.filter((l) => l.peerId === to);
  }

  /** Send unreliable state to every connected peer (or ``to``); false if dropped. */
  /** Star client: a message for anyone but the host goes to the host as RELAY. */
  _viaHost(to) {
    return this.topology === "star" && !this.isHost && to !== this.host;
  }

  get isHost() {
    return this.host !== null && this.host === this.peerId;
  }

  _relay(label, to, body) {
    const link = this.links.get(this.host);
    if (!link || link.state !== "connected") return false;
    this._relayN = ((this._relayN ?? -1) + 1) & 0xffff;
    const bytes = serialize({ type: MsgType.RELAY, to: to ?? "", n: this._relayN, sentUs: nowUs(), body });
    if (bytes.length > this.cfg.limits.maxPacketBytes) {
      throw new EncodeError(`relayed message of ${bytes.length} B over maxPacketBytes (relays are never chunked)`);
    }
    return label === "state" ? link.sendStateBytes(bytes) : (link.sendReliable(label, [bytes]), true);
  }

  sendState(data, to = null) {
    const body = encode(data, this.cfg.limits); // EncodeError at the call, nothing sent
    if (this._viaHost(to)) return this._relay("state", to, body);
    let ok = true;
    const targets = this._targets(to);
    for (const link of targets) ok = link.sendStamped(MsgType.STATE, body) && ok;
    return ok && targets.length > 0;
  }

  /** Send a reliable, ordered event (chunked over 1,200 B). */
  sendEvent(data, to = null, { channel = "events" } = {}) {
    if (!this.cfg.channels.some((c) => c.label === channel && c.label !== "state")) {
      throw new EncodeError(`no reliable channel ${channel}`);
    }
    if (this._viaHost(to)) return void this._relay(channel, to, encode(data, this.cfg.limits));
    const packets = encodeEventPackets(data, this._msgId++, this.cfg.limits);
    for (const link of this._targets(to)) link.sendReliable(channel, packets);
  }

  /** Send a snapshot (Map or object of entities), delta-compressed per peer. */
  sendSnapshot(entities, to = null) {
    if (this.topology === "star" && !this.isHost && to !== this.host) {
      throw new EncodeError("in a star, a client sends snapshots to the host only");
    }
    let ok = true;
    const targets = this._targets(to);
    for (const link of targets) ok = link.sendSnapshot(entities) && ok;
    return ok && targets.length > 0;
  }

  /** Star host: deliver what client ``origin`` relayed, here and/or to other clients. */
  _onRelay(origin, msg, label, size, body) {
    const to = msg.to;
    if (to === "" || to === this.peerId) {
      if (label === "state") {
        this._emit({ type: "StateReceived", peerId: origin, data: msg.payload, seq: msg.n, sentUs: msg.sentUs });
      } else this._emit({ type: "EventReceived", peerId: origin, data: msg.payload, channel: label, size });
    }
    if (to === this.peerId) return;
    const targets = to === "" ? this._targets(null) : this._targets(to);
    for (const link of targets) {
      if (link.peerId === origin) continue;
      const fwd = serialize({ type: MsgType.FORWARD, origin, n: msg.n, sentUs: msg.sentUs, body });
      if (label === "state") link.sendStateBytes(fwd);
      else link.sendReliable(label, [fwd]);
    }
  }

  /** Star client: the host link changed state; peers reached through it follow. */
  _hostLinkEvent(ev) {
    for (const pid of this.viaHost) {
      if (ev.type === "PeerConnected") this._emit({ type: "PeerConnected", peerId: pid, connectMs: ev.connectMs });
      else if (ev.type === "PeerLeft" || ev.type === "PeerLost" || ev.type === "PeerConnectFailed") {
        this._emit({ type: "PeerLost", peerId: pid, reason: ev.reason ?? "closed", detail: "via the host" });
      }
    }
  }

  _tick() {
    const t = now();
    for (const link of this.links.values()) link.tick(t);
  }

  /** Say BYE to every peer, close the connections and the lobby socket. */
  async close() {
    if (this.closed) return;
    this.closed = true;
    if (this._timer !== undefined) clearInterval(this._timer);
    await Promise.all([...this.links.values()].map((l) => l.goodbye()));
    this.ws?.close(1000);
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new ConnectTimeout(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
