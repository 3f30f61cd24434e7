// netcode browser client: lobby (PROTOCOL.md 1), mesh of RTCPeerConnections with
// negotiated `state`/`events` channels, STATE/EVENT/SNAPSHOT/CHUNK/ACK/PING/PONG/BYE
// (PROTOCOL.md 2, STATE_SYNC.md). Plays in the same room as Python netcode sessions.
//
//   import { connect } from "./netcode.js";
//   const s = await connect("ws://127.0.0.1:8765/", { room: "K7QX2M" });
//   s.sendState({ x: 1.5 });  for (const ev of s.poll()) ...;  await s.close();

import { PeerLink, now, nowUs } from "./link.js";
import { ConnectTimeout, LobbyError, Requests, openLobby, parseLobby, withTimeout } from "./lobby.js";
import { DEFAULT_LIMITS, EncodeError, NetcodeError, encode } from "./msgpack.js";
import { hostChangePlan, peerKinds } from "./star.js";
import { MsgType, encodeEventPackets, serialize } from "./wire.js";

export * from "./msgpack.js";
export { ConfigError, InterpolationBuffer, recommendedDelay } from "./interpolation.js";

export { ConnectTimeout, LobbyError, listRooms } from "./lobby.js";

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
  autoRejoin: true, // a dropped lobby websocket: take the seat back with the token
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
    this._msgId = 0;
    this._requests = new Requests();
    this.lobbyConnected = false;
    this.reconnectToken = null; // room_joined.token: rejoinToken for connect() after a reload
    this.tokenExpiresS = 0;
    this.metadata = {};
    this.locked = false;
    this.maxPlayers = 0;
  }

  // ------------------------------------------------------------------ lobby

  async _open(url, options = {}) {
    const { token = null, quickMatch = null } = options;
    this.url = url;
    this.lobbyToken = token;
    const { ws, welcome } = await openLobby(url, { token, timeoutMs: this.cfg.lobbyTimeoutMs });
    this._attach(ws, welcome);
    const { rid, reply } = this._requests.send(ws, roomRequest(options));
    const ms = quickMatch ? (quickMatch.timeoutMs ?? null) : this.cfg.lobbyTimeoutMs;
    let joined;
    try {
      joined = ms === null ? await reply : await withTimeout(reply, ms, "no room from the lobby");
    } catch (err) {
      if (quickMatch && err instanceof ConnectTimeout) this._sendLobby({ type: "cancel_quick_match" });
      this._requests.pending.delete(rid);
      throw err;
    }
    this._enterRoom(joined);
    this._timer = setInterval(() => this._tick(), Math.min(50, this.cfg.heartbeatIntervalMs));
    for (const pid of ids(joined.peers)) this._addPeer(pid, true);
  }

  /** A lobby socket that said welcome becomes ours (first connect and every rejoin). */
  _attach(ws, welcome) {
    this.ws = ws;
    this.lobbyConnected = true;
    if (this.peerId === null) this.peerId = welcome.peer_id;
    // Fresh TURN credentials come with every welcome: links built from now on use them.
    this.iceServers = this.cfg.iceServers ?? (welcome.ice_servers ?? []);
    ws.onerror = null;
    ws.onmessage = (e) => this._onLobby(e.data);
    ws.onclose = (e) => this._lobbyClosed(e);
  }

  _enterRoom(joined) {
    this.room = joined.room;
    this.peerId = joined.peer_id;
    this.topology = joined.topology ?? "mesh";
    this.host = joined.host ?? null;
    this.reconnectToken = joined.token ?? null;
    this.tokenExpiresS = joined.token_expires_s ?? 0;
    this.metadata = joined.metadata ?? {};
    this.locked = joined.locked ?? false;
    this.maxPlayers = joined.max_players ?? 0;
  }

  _sendLobby(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ ...msg, v: 1 }));
  }

  /** A lobby request answered by ok/room_list...; LobbyError with the lobby's code. */
  async _lobbyRequest(msg) {
    if (!this.lobbyConnected) throw new LobbyError("not_connected", "the lobby connection is down");
    const { rid, reply } = this._requests.send(this.ws, msg);
    try {
      return await withTimeout(reply, this.cfg.lobbyTimeoutMs, `no answer to ${msg.type}`);
    } finally {
      this._requests.pending.delete(rid);
    }
  }

  /** Host only: remove ``peerId`` from the room (it cannot come back); LobbyError not_owner. */
  async kick(peerId, reason = "") {
    await this._lobbyRequest({ type: "kick", peer: peerId, reason });
  }

  /** Host only: a locked room refuses join_room (rejoin still works). */
  async lock(locked = true) {
    await this._lobbyRequest({ type: "lock_room", locked });
  }

  /** Host only: replace the room's metadata (every member gets RoomUpdated). */
  async updateMetadata(metadata) {
    await this._lobbyRequest({ type: "update_room", metadata });
  }

  /** The lobby's public rooms (as listRooms(), on this session's socket). */
  async listRooms(game = null) {
    const msg = await this._lobbyRequest({ type: "list_rooms", ...(game ? { game } : {}) });
    return Array.isArray(msg.rooms) ? msg.rooms : [];
  }

  _onLobby(text) {
    const msg = parseLobby(text);
    if (msg === null || this._requests.settle(msg)) return;
    switch (msg.type) {
      case "peer_joined":
        return this._addPeer(msg.peer_id, false);
      case "kicked":
        // Out of the room (the lobby connection stays): say BYE and drop every link.
        this._kicked = true;
        this.reconnectToken = null; // revoked: nothing to rejoin with
        this._emit({ type: "Kicked", reason: msg.reason ?? "" });
        for (const link of this.links.values()) link.goodbye();
        this.links.clear();
        this.viaHost.clear();
        return;
      case "host_changed":
        if (typeof msg.host !== "string") return; // malformed: ignored like unknown messages
        return this._hostChanged(msg.host, typeof msg.previous === "string" ? msg.previous : this.host);
      case "peer_reconnecting":
        return this._emit({ type: "PeerReconnecting", peerId: msg.peer_id });
      case "peer_reconnected":
        // It offers anew where its link died; ours is replaced when that offer comes.
        return this._emit({ type: "PeerReconnected", peerId: msg.peer_id });
      case "room_updated":
        this.metadata = msg.metadata ?? this.metadata;
        this.locked = msg.locked ?? this.locked;
        return this._emit({ type: "RoomUpdated", metadata: this.metadata, locked: this.locked });
      case "quick_match_waiting":
        return this._emit({ type: "QuickMatchWaiting", game: msg.game, size: msg.size, waiting: msg.waiting });
      case "peer_left": {
        const reason = msg.reason ?? "left";
        const link = this.links.get(msg.peer_id);
        // As Python's: PeerLeft whenever a member goes, after a PeerLost of its link too.
        if (link && !link.ended) link.end("left", reason);
        else if (link || this.viaHost.has(msg.peer_id)) this._emit({ type: "PeerLeft", peerId: msg.peer_id, reason });
        this.viaHost.delete(msg.peer_id);
        this.links.delete(msg.peer_id);
        return;
      }
      case "signal":
        return this._onSignal(msg);
      default:
        return; // unknown server messages are ignored (PROTOCOL.md 1.5)
    }
  }

  /** The lobby named a new host. In a star the links are rebuilt around it at once
   *  (star.js hostChangePlan): clients offer to the new host, which answers each. */
  _hostChanged(host, previous) {
    this.host = host;
    this._emit({ type: "HostChanged", peerId: host, previous, you: host === this.peerId });
    const fresh = new Set(); // the peers given a new link (returned)
    if (this.topology !== "star") return fresh; // a mesh only changes owner
    const plan = hostChangePlan({ me: this.peerId, host, previous, peers: peerKinds(this.links, this.viaHost) });
    for (const pid of plan.retire) {
      const link = this.links.get(pid);
      if (link.state === "connected") {
        // A link that still works but is no longer the way: heard as lost, with the
        // peers reached through it, as Python's session does, so every PeerConnected
        // that follows comes after a loss.
        const lost = { type: "PeerLost", peerId: pid, reason: "closed", detail: "no longer the host" };
        this._emit(lost);
        this._hostLinkEvent(lost);
      }
      link.retire();
    }
    for (const pid of plan.toVia) {
      this.links.delete(pid);
      this.viaHost.add(pid);
    }
    for (const pid of [...plan.answer, ...(plan.offerTo === null ? [] : [plan.offerTo])]) {
      this.viaHost.delete(pid);
      this.links.get(pid)?.retire();
      this.links.set(pid, new PeerLink(this, pid, pid === plan.offerTo));
      fresh.add(pid);
    }
    return fresh;
  }

  _onSignal(msg) {
    let link = this.links.get(msg.from);
    // An offer on a link that already negotiated (or died) is the peer rebuilding it
    // after its lobby rejoin: a fresh link answers it, as the Python session does.
    const pc = link?.pc;
    if (msg.kind === "offer" && link && (link.ended || pc.remoteDescription || pc.localDescription)) {
      link = this._replaceLink(msg.from, false);
    }
    link?.onSignal(msg.kind, msg.data);
  }

  /** A fresh link to a peer that is (back) in the room; the old one is closed quietly. */
  _replaceLink(pid, offer) {
    const old = this.links.get(pid);
    if (!old) return this._addPeer(pid, offer);
    old.retire("closed");
    const link = new PeerLink(this, pid, offer);
    this.links.set(pid, link);
    return link;
  }

  _lobbyClosed(e) {
    this.lobbyConnected = false;
    this._requests.failAll(`lobby closed (${e.code})`);
    if (this.closed || this._rejoining) return; // a rejoin in progress retries by itself
    // 1000 from the lobby: our seat was taken by a newer connection with our token.
    if (this._kicked || !this.reconnectToken || !this.cfg.autoRejoin || e.code === 1000) {
      this._emit({ type: "LobbyClosed", code: e.code, reason: e.reason ?? "" });
      return;
    }
    this._rejoinLobby();
  }

  /** Take our seat back on a new lobby socket within the grace period (PROTOCOL.md 1.6);
   *  peer links stay up meanwhile. Retries with backoff while the lobby is unreachable. */
  async _rejoinLobby() {
    this._rejoining = true;
    this._emit({ type: "LobbyReconnecting" });
    const deadline = now() + Math.max(this.tokenExpiresS, 1);
    let delay = 50;
    try {
      while (!this.closed && now() < deadline) {
        const outcome = await this._tryRejoin();
        if (outcome === "ok") return this._emit({ type: "LobbyRejoined", peerId: this.peerId });
        if (outcome instanceof LobbyError) {
          return this._emit({ type: "LobbyClosed", code: 1000, reason: outcome.code });
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 1000);
      }
      if (!this.closed) this._emit({ type: "LobbyClosed", code: 1006, reason: "rejoin_expired" });
    } finally {
      this._rejoining = false;
    }
  }

  /** One attempt: "ok", a final LobbyError (bad_token, banned...), or null to retry. */
  async _tryRejoin() {
    let opened;
    try {
      opened = await openLobby(this.url, { token: this.lobbyToken, timeoutMs: this.cfg.lobbyTimeoutMs });
    } catch {
      return null; // the lobby is not back yet
    }
    if (this.closed) return opened.ws.close(1000), null;
    this._attach(opened.ws, opened.welcome);
    try {
      const { reply } = this._requests.send(this.ws, { type: "rejoin", token: this.reconnectToken, room: this.room });
      const joined = await withTimeout(reply, this.cfg.lobbyTimeoutMs, "no answer to rejoin");
      const host = this.host;
      this._enterRoom(joined);
      this.host = host; // a host change while we were away is applied as host_changed
      const moved = typeof joined.host === "string" && joined.host !== host;
      this._afterRejoin(joined, moved ? this._hostChanged(joined.host, host) : new Set());
      return "ok";
    } catch (err) {
      this.ws.onclose = null;
      this.ws.close(1000);
      this.lobbyConnected = false;
      return err instanceof LobbyError && err.code !== "closed" ? err : null;
    }
  }

  /** Back in the room: peers gone meanwhile are dropped, links that died are rebuilt
   *  (we offer: the others wait for the rejoiner), working ones are kept. */
  _afterRejoin(joined, fresh) {
    const present = new Set(ids(joined.peers));
    const away = new Set(ids(joined.reconnecting));
    for (const [pid, link] of [...this.links]) {
      if (present.has(pid)) continue;
      if (!link.ended) link.end("left", "left");
      this.links.delete(pid);
    }
    for (const pid of [...this.viaHost]) {
      if (present.has(pid)) continue;
      this.viaHost.delete(pid);
      this._emit({ type: "PeerLeft", peerId: pid, reason: "left" });
    }
    for (const pid of present) {
      if (away.has(pid) || this.viaHost.has(pid) || fresh.has(pid)) continue;
      const link = this.links.get(pid);
      if (!link) this._addPeer(pid, true); // in a star: reached through the host
      else if (link.state === "connected") continue;
      else if (this.topology === "star" && !this.isHost && pid !== this.host) {
        link.retire(); // a star client reaches the others through the host only
        this.links.delete(pid);
        this.viaHost.add(pid);
      } else this._replaceLink(pid, true);
    }
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

/** Peer ids from a lobby list field (anything else in it is ignored). */
function ids(list) {
  return Array.isArray(list) ? list.filter((p) => typeof p === "string") : [];
}

/** The first request of a session: rejoin, quick_match, join_room or create_room. */
function roomRequest(o) {
  const { room = null, create = false, maxPlayers = 8, metadata = {}, topology = null } = o;
  if (o.rejoinToken) return { type: "rejoin", token: o.rejoinToken, ...(room ? { room } : {}) };
  if (o.quickMatch) {
    const { game, size, metadata: qm = metadata } = o.quickMatch;
    const topo = o.quickMatch.topology ?? topology ?? "mesh";
    return { type: "quick_match", game, size, topology: topo, metadata: qm };
  }
  if (room && !create) return { type: "join_room", room };
  const priv = o.private ? { private: true } : {};
  return { type: "create_room", max_players: maxPlayers, metadata, ...priv, ...(topology ? { topology } : {}) };
}
