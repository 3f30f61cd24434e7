// Sequence numbers, acks and per-peer statistics (docs/STATE_SYNC.md 2-3).

/** a is newer than b on 16 bits (RFC 1982 style). */
export function seqGreaterThan(a, b) {
  const d = (a - b) & 0xffff;
  return d > 0 && d < 32768;
}

const LOSS_WINDOW_S = 2;
const SENT_RING = 1024;

/** One direction-pair of the state channel: stamping, accepting, acks, RTT, loss. */
export class ReliabilityEndpoint {
  constructor() {
    this.localSeq = 0;
    this.remoteSeq = 0;
    this.ackBits = 0; // bit i: remoteSeq - i accepted; 0: nothing accepted yet
    this.sent = new Map(); // seq -> {t, acked}
    this.acked = []; // our sequences newly acked (drained by takeAcked)
    this.srtt = null;
    this.jitter = 0;
    this.lastSample = null;
    this.packetsSent = 0;
    this.packetsReceived = 0;
    this.packetsAcked = 0;
    this.staleDrops = 0;
    this.bytes = []; // [t, sent, received]
  }

  /** The header for our next STATE/SNAPSHOT/ACK, at ``now`` seconds. */
  nextHeader(now, size = 0) {
    const seq = this.localSeq;
    this.localSeq = (seq + 1) & 0xffff;
    this.sent.set(seq, { t: now, acked: false });
    if (this.sent.size > SENT_RING) this.sent.delete(this.sent.keys().next().value);
    this.packetsSent++;
    this._bytes(now, size, 0);
    return { seq, ack: this.ackBits === 0 ? 0 : this.remoteSeq, ackBits: this.ackBits >>> 0 };
  }

  /** Process a received header; true if its payload is new (accepted). */
  receive(h, now, size = 0) {
    this.packetsReceived++;
    this._bytes(now, 0, size);
    this._processAcks(h.ack, h.ackBits);
    if (this.ackBits !== 0 && !seqGreaterThan(h.seq, this.remoteSeq)) {
      this.staleDrops++;
      return false;
    }
    const shift = this.ackBits === 0 ? 32 : (h.seq - this.remoteSeq) & 0xffff;
    this.ackBits = shift >= 32 ? 1 : ((this.ackBits << shift) | 1) >>> 0;
    this.remoteSeq = h.seq;
    return true;
  }

  /** Withdraw the ack of an accepted packet whose payload could not be used. */
  discardReceived(seq) {
    const d = (this.remoteSeq - seq) & 0xffff;
    if (d < 32) this.ackBits = (this.ackBits & ~(1 << d)) >>> 0;
  }

  _processAcks(ack, bits) {
    for (let i = 0; bits !== 0 && i < 32; i++, bits >>>= 1) {
      if ((bits & 1) === 0) continue;
      const rec = this.sent.get((ack - i) & 0xffff);
      if (rec && !rec.acked) {
        rec.acked = true;
        this.packetsAcked++;
        this.acked.push((ack - i) & 0xffff);
      }
    }
  }

  takeAcked() {
    const out = this.acked;
    this.acked = [];
    return out;
  }

  /** An RTT sample in seconds (from PING/PONG): SRTT gain 1/8, jitter gain 1/16. */
  addRttSample(rtt) {
    if (this.srtt === null) this.srtt = rtt;
    else this.srtt += (rtt - this.srtt) / 8;
    if (this.lastSample !== null) this.jitter += (Math.abs(rtt - this.lastSample) - this.jitter) / 16;
    this.lastSample = rtt;
  }

  _bytes(now, sent, received) {
    this.bytes.push([now, sent, received]);
    while (this.bytes.length && this.bytes[0][0] < now - 1) this.bytes.shift();
  }

  loss(now) {
    const rtt = this.srtt ?? 0;
    const t = Math.max(0.25, 2 * rtt + 4 * this.jitter);
    let n = 0;
    let lost = 0;
    for (const rec of this.sent.values()) {
      if (rec.t <= now - t && rec.t >= now - t - LOSS_WINDOW_S) {
        n++;
        if (!rec.acked) lost++;
      }
    }
    return n === 0 ? 0 : lost / n;
  }

  stats(now) {
    let s = 0;
    let r = 0;
    for (const [t, a, b] of this.bytes) if (t >= now - 1) (s += a), (r += b);
    return {
      rttMs: (this.srtt ?? 0) * 1000,
      jitterMs: this.jitter * 1000,
      loss: this.loss(now),
      packetsSent: this.packetsSent,
      packetsReceived: this.packetsReceived,
      packetsAcked: this.packetsAcked,
      kbpsSent: (s * 8) / 1000,
      kbpsReceived: (r * 8) / 1000,
      staleDrops: this.staleDrops,
    };
  }
}

/** Token bucket: ``rate`` per second, capacity ``burst``. */
export class TokenBucket {
  constructor(rate, burst, now) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.t = now;
  }
  take(n, now) {
    this.tokens = Math.min(this.burst, this.tokens + (now - this.t) * this.rate);
    this.t = now;
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }
}
