// One peer connection of a Session: RTCPeerConnection, negotiated channels, signaling,
// heartbeats, acks, receive budgets, and the data-channel protocol (PROTOCOL.md 2).

import { DecodeError, EncodeError, encode } from "./msgpack.js";
import { ReliabilityEndpoint, TokenBucket, seqGreaterThan } from "./reliability.js";
import { DeltaBaselineMissing, SnapshotReceiver, SnapshotSender } from "./snapshot.js";
import { ChunkAssembler, MsgType, parse, payloadBytes, serialize, withBody } from "./wire.js";
import { HELLO_KEY, checkRemote, helloOf, mismatchData, mismatchDetail, serializeHello } from "./hello.js";

export const now = () => performance.now() / 1000;
export const nowUs = () => Math.floor(performance.now() * 1000) % 4294967296;
const MAX_OUTSTANDING_PINGS = 16;
const MAX_QUEUED_CANDIDATES = 64;

export class PeerLink {
  constructor(session, peerId, offer) {
    this.s = session;
    this.cfg = session.cfg;
    this.peerId = peerId;
    this.state = "connecting";
    this.ended = false;
    this.created = now();
    this.endpoint = new ReliabilityEndpoint();
    this.snapRx = new SnapshotReceiver({ quantize: this.cfg.quantize, limits: this.cfg.limits });
    this.snapTx = new SnapshotSender({ quantize: this.cfg.quantize, limits: this.cfg.limits });
    this.assemblers = new Map();
    this.outQueues = new Map();
    this.pingsOut = new Map();
    this.forwardNewest = new Map(); // star client: origin -> newest forwarded state n
    this.counters = { stateDrops: 0, badPackets: 0, rateLimited: 0, pingsIgnored: 0, unmatchedPongs: 0 };
    this.remoteCandidates = [];
    this.ops = Promise.resolve();
    // Sent in our offer/answer, checked against the peer's (PROTOCOL.md 2.1.1).
    this.hello = helloOf(this.cfg);
    this._initBudgets();
    this._initPc(offer);
  }

  _initBudgets() {
    const b = this.cfg.budget;
    const t = now();
    this.buckets = {
      stateMsgs: new TokenBucket(b.stateMsgsPerS, b.stateMsgsPerS * b.burstS, t),
      stateBytes: new TokenBucket(b.stateBytesPerS, b.stateBytesPerS * b.burstS, t),
      pongs: new TokenBucket(b.pingsAnsweredPerS, b.pingsAnsweredPerS * 2, t),
    };
    this.eventBuckets = new Map();
  }

  _initPc(offer) {
    this.pc = new RTCPeerConnection({
      iceServers: this.s.iceServers,
      iceTransportPolicy: this.cfg.iceTransportPolicy, // "relay": TURN only (hides our address)
    });
    this.channels = new Map();
    for (const c of this.cfg.channels) {
      const opts = { negotiated: true, id: c.id, ordered: c.ordered ?? true };
      if (c.maxRetransmits !== undefined && c.maxRetransmits !== null) opts.maxRetransmits = c.maxRetransmits;
      if (c.maxPacketLifeTime != null) opts.maxPacketLifeTime = c.maxPacketLifeTime;
      const ch = this.pc.createDataChannel(c.label, opts);
      ch.binaryType = "arraybuffer";
      ch.bufferedAmountLowThreshold = 16_384;
      ch.onopen = () => this._checkOpen();
      ch.onclose = () => this.lose("closed", `channel ${c.label} closed`);
      ch.onmessage = (e) => this.receive(c.label, e.data);
      ch.onbufferedamountlow = () => this._pump(c.label);
      this.channels.set(c.label, ch);
      if (c.label !== "state") this.assemblers.set(c.label, new ChunkAssembler(this.cfg.limits));
    }
    this.pc.onicecandidate = (e) => this._onLocalCandidate(e.candidate);
    this.pc.onconnectionstatechange = () => {
      const st = this.pc.connectionState;
      if (st === "failed" || st === "closed") this.lose("closed", `connection ${st}`);
    };
    if (offer) this._op(async () => {
      await this.pc.setLocalDescription(await this.pc.createOffer());
      this.s._signal(this.peerId, "offer", this._description());
    });
  }

  _description() {
    const d = this.pc.localDescription;
    return { type: d.type, sdp: d.sdp, [HELLO_KEY]: serializeHello(this.hello) };
  }

  /** Check the peer's hello before using its offer/answer; on a difference tell it and end. */
  _helloAccepted(data) {
    const verdict = checkRemote(this.hello, data);
    if (verdict.status === "match" || verdict.status === "absent") return true; // absent: older/other client
    this.s._signal(this.peerId, "bye", mismatchData(this.hello, verdict.detail));
    this.mismatch(verdict.detail, verdict.status === "invalid");
    return false;
  }

  _op(fn) {
    // Signaling steps run one at a time, in arrival order.
    this.ops = this.ops.then(fn).catch((err) => this.fail(`signaling: ${err?.message ?? err}`));
  }

  _onLocalCandidate(c) {
    if (this.ended) return;
    if (c === null || c.candidate === "") {
      // With no usable candidate sent (e.g. only mDNS ones), end-of-candidates would make
      // an offering aioice fail at once, before our checks teach it our address
      // (peer-reflexive): leave it out; the connect timeout still bounds the attempt.
      if (this.candidatesSent > 0) this.s._signal(this.peerId, "end_of_candidates", {});
      return;
    }
    // netcode (aioice) cannot resolve mDNS .local names: sending them only costs signals.
    if (/\s\S+\.local\s/.test(c.candidate)) return;
    // candidateFilter: false drops the candidate, an object replaces it (labs and tests
    // rewrite addresses), true sends it as is.
    const verdict = this.cfg.candidateFilter ? this.cfg.candidateFilter(c) : true;
    if (!verdict) return;
    this.candidatesSent = (this.candidatesSent ?? 0) + 1;
    this.s._signal(this.peerId, "candidate", verdict === true ? c.toJSON() : verdict);
  }

  onSignal(kind, data) {
    if (this.ended) return;
    if ((kind === "offer" || kind === "answer") && !this._helloAccepted(data)) return;
    if (kind === "bye") {
      const detail = mismatchDetail(this.hello, data); // null: a bye we ignore (PROTOCOL.md 2.1)
      if (detail !== null && this.state === "connecting") this.mismatch(detail);
    } else if (kind === "offer") {
      this._op(async () => {
        await this.pc.setRemoteDescription(data);
        await this._flushCandidates();
        await this.pc.setLocalDescription(await this.pc.createAnswer());
        this.s._signal(this.peerId, "answer", this._description());
      });
    } else if (kind === "answer") {
      this._op(async () => {
        await this.pc.setRemoteDescription(data);
        await this._flushCandidates();
      });
    } else if (kind === "candidate" || kind === "end_of_candidates") {
      // Candidates that arrive before the remote description wait for it.
      const cand = kind === "candidate" ? data : null;
      this._op(async () => {
        if (this.pc.remoteDescription === null) {
          // Bounded: a peer flooding candidates before its offer cannot grow memory.
          if (this.remoteCandidates.length < MAX_QUEUED_CANDIDATES) this.remoteCandidates.push(cand);
        }
        else await this._addCandidate(cand);
      });
    }
  }

  async _flushCandidates() {
    const queued = this.remoteCandidates;
    this.remoteCandidates = [];
    for (const c of queued) await this._addCandidate(c);
  }

  async _addCandidate(c) {
    try {
      await this.pc.addIceCandidate(c === null ? undefined : c);
    } catch {
      // A malformed or late candidate from a peer is not fatal: ICE fails or not on its own.
    }
  }

  _checkOpen() {
    if (this.state !== "connecting") return;
    for (const ch of this.channels.values()) if (ch.readyState !== "open") return;
    this.state = "connected";
    const t = now();
    this.lastRecv = t;
    this.lastStamped = -Infinity;
    this.nextHeartbeat = t;
    this.lastStats = t;
    this.acceptedSinceSend = 0;
    this.connectedAt = t;
    this._lifecycle({ type: "PeerConnected", peerId: this.peerId, connectMs: (t - this.created) * 1000 });
  }

  // ------------------------------------------------------------ time

  tick(t) {
    if (this.state === "connecting") {
      if (t >= this.created + this.cfg.connectTimeoutMs / 1000) {
        this.fail(`not connected within ${this.cfg.connectTimeoutMs / 1000} s`);
      }
      return;
    }
    if (this.state !== "connected" || t < this.nextHeartbeat) return;
    if (t - this.lastRecv > this.cfg.peerTimeoutMs / 1000) {
      return this.lose("timeout", `nothing received for ${(t - this.lastRecv).toFixed(1)} s`);
    }
    const sentUs = nowUs();
    this.pingsOut.set(sentUs, true);
    if (this.pingsOut.size > MAX_OUTSTANDING_PINGS) this.pingsOut.delete(this.pingsOut.keys().next().value);
    this._send("state", serialize({ type: MsgType.PING, sentUs }));
    if (t - this.lastStamped >= this.cfg.heartbeatIntervalMs / 1000) this._sendAck(t);
    if (this.cfg.statsIntervalMs !== null && t - this.lastStats >= this.cfg.statsIntervalMs / 1000) {
      this.lastStats = t;
      this.s._emit({ type: "StatsUpdated", peerId: this.peerId, stats: this.stats() });
    }
    this.nextHeartbeat = t + this.cfg.heartbeatIntervalMs / 1000;
  }

  _sendAck(t) {
    this._send("state", this._stamped(MsgType.ACK, null, t));
  }

  _stamped(type, body, t) {
    this.lastStamped = t;
    this.acceptedSinceSend = 0;
    const h = this.endpoint.nextHeader(t, body ? body.length : 0);
    const fields = [h.seq, h.ack, h.ackBits, nowUs()];
    return type === MsgType.ACK
      ? serialize({ type, seq: h.seq, ack: h.ack, ackBits: h.ackBits, sentUs: fields[3] })
      : withBody(type, fields, body);
  }

  stats() {
    return { ...this.endpoint.stats(now()), ...this.counters };
  }

  // ------------------------------------------------------------ sending

  _send(label, bytes) {
    const ch = this.channels.get(label);
    if (!ch || ch.readyState !== "open") return false;
    try {
      ch.send(bytes);
      return true;
    } catch {
      return false;
    }
  }

  sendStamped(type, body) {
    const ch = this.channels.get("state");
    if (ch.bufferedAmount > this.cfg.stateBufferThreshold) {
      this.counters.stateDrops++; // latest state wins: never queue stale state
      return false;
    }
    const bytes = this._stamped(type, body, now());
    if (bytes.length > this.cfg.limits.maxPacketBytes) {
      throw new EncodeError(`state of ${bytes.length} B exceeds maxPacketBytes: use sendEvent`);
    }
    return this._send("state", bytes);
  }

  /** A ready RELAY/FORWARD on the state channel (no sequence); false if dropped. */
  sendStateBytes(bytes) {
    if (this.channels.get("state").bufferedAmount > this.cfg.stateBufferThreshold) {
      this.counters.stateDrops++;
      return false;
    }
    return this._send("state", bytes);
  }

  sendSnapshot(entities) {
    const payloads = this.snapTx.encode(entities, this.endpoint.localSeq);
    let ok = true;
    for (const p of payloads) ok = this.sendStamped(MsgType.SNAPSHOT, encode(p, this.cfg.limits)) && ok;
    return ok;
  }

  sendReliable(label, packets) {
    if (!this.outQueues.has(label)) this.outQueues.set(label, []);
    this.outQueues.get(label).push(...packets);
    this._pump(label);
  }

  _pump(label) {
    // Paced like netcode (PROTOCOL.md 2.7): state never waits behind a big event.
    const ch = this.channels.get(label);
    const q = this.outQueues.get(label);
    while (q && q.length && ch.readyState === "open" && ch.bufferedAmount < this.cfg.reliableBufferLimit) {
      ch.send(q.shift());
    }
  }

  // ------------------------------------------------------------ receiving

  _admit(label, size, t) {
    if (label === "state") {
      return this.buckets.stateMsgs.take(1, t) && this.buckets.stateBytes.take(size, t);
    }
    const b = this.cfg.budget;
    if (!this.eventBuckets.has(label)) {
      const burstBytes = Math.max(b.eventBytesPerS * b.burstS, this.cfg.limits.maxEventBytes + 65_536);
      this.eventBuckets.set(label, [
        new TokenBucket(b.eventMsgsPerS, b.eventMsgsPerS * b.burstS, t),
        new TokenBucket(b.eventBytesPerS, burstBytes, t),
      ]);
    }
    const [m, by] = this.eventBuckets.get(label);
    return m.take(1, t) && by.take(size, t);
  }

  receive(label, data) {
    if (this.state !== "connected") return;
    const t = now();
    if (typeof data === "string") return this._bad("text message");
    if (!this._admit(label, data.byteLength, t)) {
      this.counters.rateLimited++;
      if (label !== "state") return this.lose("abuse", `over the event budget on ${label}`);
      // A state overrun with drops never more than 1 s apart, lasting abuseAfterS: abuse.
      if (this.overSince === undefined || t - this.lastOver > 1) this.overSince = t;
      this.lastOver = t;
      if (t - this.overSince >= this.cfg.budget.abuseAfterS) this.lose("abuse", "over the state budget");
      return;
    }
    let msg;
    try {
      msg = parse(data, this.cfg.limits);
    } catch (err) {
      if (err instanceof DecodeError) return this._bad(err.message);
      throw err;
    }
    this.lastRecv = t;
    if (msg.type === MsgType.RELAY || msg.type === MsgType.FORWARD) this._onStar(msg, label, data);
    else if (label === "state") this._onState(msg, t, data.byteLength);
    else this._onReliable(label, msg, data.byteLength);
  }

  /** RELAY only from a star client to us, the host; FORWARD only from our host. */
  _onStar(msg, label, data) {
    const s = this.s;
    if (msg.type === MsgType.RELAY) {
      if (s.topology !== "star" || !s.isHost) return this._bad("RELAY on a link that is not from a star client");
      if (label === "state") {
        if (this.relayNewest !== undefined && !seqGreaterThan(msg.n, this.relayNewest)) return; // stale
        this.relayNewest = msg.n;
      }
      return s._onRelay(this.peerId, msg, label, data.byteLength, payloadBytes(data));
    }
    if (s.topology !== "star" || s.isHost || this.peerId !== s.host || msg.origin === this.peerId) {
      return this._bad("FORWARD on a link that is not from the star's host");
    }
    if (label !== "state") {
      return s._emit({ type: "EventReceived", peerId: msg.origin, data: msg.payload, channel: label, size: data.byteLength });
    }
    const newest = this.forwardNewest.get(msg.origin);
    if (newest !== undefined && !seqGreaterThan(msg.n, newest)) return; // newest wins, per origin
    this.forwardNewest.delete(msg.origin);
    this.forwardNewest.set(msg.origin, msg.n);
    if (this.forwardNewest.size > 256) this.forwardNewest.delete(this.forwardNewest.keys().next().value);
    s._emit({ type: "StateReceived", peerId: msg.origin, data: msg.payload, seq: msg.n, sentUs: msg.sentUs });
  }

  _bad(why) {
    this.counters.badPackets++;
    this.lastBad = why;
  }

  _onState(msg, t, size) {
    switch (msg.type) {
      case MsgType.STATE:
      case MsgType.SNAPSHOT:
      case MsgType.ACK: {
        const fresh = this.endpoint.receive(msg, t, size);
        for (const seq of this.endpoint.takeAcked()) this.snapTx.onAck(seq);
        if (!fresh) return;
        // Ack within the 32-packet window even when we send nothing (STATE_SYNC 2 rule 4).
        if (++this.acceptedSinceSend >= this.cfg.ackEvery) this._sendAck(t);
        if (msg.type === MsgType.STATE) {
          this.s._emit({ type: "StateReceived", peerId: this.peerId, data: msg.payload, seq: msg.seq, sentUs: msg.sentUs });
        } else if (msg.type === MsgType.SNAPSHOT) this._onSnapshot(msg);
        return;
      }
      case MsgType.PING:
        if (this.buckets.pongs.take(1, t)) {
          this._send("state", serialize({ type: MsgType.PONG, echoUs: msg.sentUs, sentUs: nowUs() }));
        } else this.counters.pingsIgnored++;
        return;
      case MsgType.PONG:
        if (!this.pingsOut.delete(msg.echoUs)) return void this.counters.unmatchedPongs++;
        this.endpoint.addRttSample(((nowUs() - msg.echoUs + 4294967296) % 4294967296) / 1e6);
        return;
      case MsgType.BYE:
        return this.end("left", msg.reason || "left");
      default:
        return this._bad(`type ${msg.type} on the state channel`);
    }
  }

  _onSnapshot(msg) {
    let done;
    try {
      done = this.snapRx.receive(msg.seq, msg.payload);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.endpoint.discardReceived(msg.seq); // never a baseline for the sender
      if (!(err instanceof DeltaBaselineMissing)) this._bad(err.message);
      return;
    }
    if (done !== null) {
      this.s._emit({ type: "SnapshotReceived", peerId: this.peerId, seq: done[0], entities: done[1], sentUs: msg.sentUs });
    }
  }

  _onReliable(label, msg, size) {
    if (msg.type === MsgType.EVENT) {
      this.s._emit({ type: "EventReceived", peerId: this.peerId, data: msg.payload, channel: label, size });
    } else if (msg.type === MsgType.CHUNK) {
      try {
        const whole = this.assemblers.get(label).push(msg);
        if (whole) this.s._emit({ type: "EventReceived", peerId: this.peerId, data: whole.msg.payload, channel: label, size: whole.size });
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        this._bad(err.message);
      }
    } else if (msg.type === MsgType.BYE) this.end("left", msg.reason || "left");
    else this._bad(`type ${msg.type} on reliable channel ${label}`);
  }

  // ------------------------------------------------------------ ending

  end(kind, reason, detail = "") {
    if (this.ended) return;
    const was = this.state;
    this.ended = true;
    this.state = kind;
    this._closePc();
    if (kind === "left") this._lifecycle({ type: "PeerLeft", peerId: this.peerId, reason });
    else if (kind === "failed") this._lifecycle({ type: "PeerConnectFailed", peerId: this.peerId, reason });
    else if (was === "connected" || reason === "mismatch") {
      this._lifecycle({ type: "PeerLost", peerId: this.peerId, reason, detail });
    }
    else this._lifecycle({ type: "PeerConnectFailed", peerId: this.peerId, reason: `${reason}: ${detail}` });
  }

  _lifecycle(ev) {
    this.s._emit(ev);
    if (this.s.topology === "star" && !this.s.isHost && this.peerId === this.s.host) this.s._hostLinkEvent(ev);
  }

  /** Close quietly (no event): a star client's link to the host it no longer has. */
  retire(state = "lost") {
    if (this.ended) return;
    this.ended = true;
    this.state = state;
    this._closePc();
  }

  lose(reason, detail = "") {
    this.end("lost", reason, detail);
  }

  /** The configurations differ (PROTOCOL.md 2.1.1): PeerLost("mismatch") although never
   *  connected; ``bad``: the peer's hello did not parse (counted in badPackets). */
  mismatch(detail, bad = false) {
    if (this.ended) return;
    if (bad) this.counters.badPackets++;
    // A configuration bug the developer must see (devtools console), not only the event.
    console.warn(`netcode: peer ${this.peerId}: configuration mismatch: ${detail}`);
    this.end("lost", "mismatch", detail);
  }

  fail(reason) {
    this.end("failed", reason);
  }

  _closePc() {
    for (const ch of this.channels.values()) (ch.onclose = null), (ch.onmessage = null);
    this.pc.onconnectionstatechange = null;
    this.pc.close();
  }

  async goodbye() {
    if (this.ended) return;
    if (this.state === "connected") {
      const bye = serialize({ type: MsgType.BYE, reason: "left" });
      for (const label of this.channels.keys()) {
        this._pump(label);
        this._send(label, bye);
      }
      // Let queued events and the BYEs reach SCTP before the connection closes.
      await waitDrained([...this.channels.values()], 1000);
    }
    this.ended = true;
    this.state = "closed";
    this._closePc();
  }
}

function waitDrained(channels, ms) {
  return new Promise((resolve) => {
    const start = performance.now();
    const check = () => {
      const busy = channels.some((c) => c.readyState === "open" && c.bufferedAmount > 0);
      if (!busy || performance.now() - start > ms) resolve();
      else setTimeout(check, 10);
    };
    check();
  });
}
