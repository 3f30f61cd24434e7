// A small net graph for the browser demo: per peer a rolling RTT plot, loss and the
// ICE path (host / srflx / relay, as netcode.net.ice.path_type names it).

const CAPACITY = 60; // samples per peer (StatsUpdated comes once a second)
const PALETTE = ["#4cf", "#fc4", "#f6a", "#8f8", "#c9f", "#fa6"];

/** The path of a candidate pair from its two candidate types (RFC 8445 5.1.1.1). */
export function pathType(local, remote) {
  if (local === "relay" || remote === "relay") return "relay";
  if (local === "host" && remote === "host") return "host";
  return "srflx"; // srflx or prflx on either side: direct, through a NAT
}

/** The ICE path of ``pc``'s selected candidate pair (getStats), or null while unknown. */
export async function selectedPath(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((r) => {
    if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
  });
  if (!pair) {
    stats.forEach((r) => {
      if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") pair = r;
    });
  }
  const local = pair && stats.get(pair.localCandidateId);
  const remote = pair && stats.get(pair.remoteCandidateId);
  return local && remote ? pathType(local.candidateType, remote.candidateType) : null;
}

export class NetGraph {
  constructor() {
    this.peers = new Map(); // peerId -> {rtts: [], loss, path, color}
  }

  _row(peerId) {
    let row = this.peers.get(peerId);
    if (!row) {
      row = { rtts: [], loss: 0, jitter: 0, path: null, color: PALETTE[this.peers.size % PALETTE.length] };
      this.peers.set(peerId, row);
    }
    return row;
  }

  /** A StatsUpdated event's numbers. */
  record(peerId, stats) {
    const row = this._row(peerId);
    row.rtts.push(stats.rttMs);
    if (row.rtts.length > CAPACITY) row.rtts.shift();
    row.loss = stats.loss;
    row.jitter = stats.jitterMs;
  }

  setPath(peerId, path) {
    this._row(peerId).path = path;
  }

  forget(peerId) {
    this.peers.delete(peerId);
  }

  /** Plot every peer's RTT (shared scale) and one text line per peer beside it. */
  draw(canvas) {
    const ctx = canvas.getContext("2d");
    const w = canvas.width;
    const h = canvas.height;
    const plotW = Math.min(w, CAPACITY * 4);
    ctx.clearRect(0, 0, w, h);
    let max = 5;
    for (const row of this.peers.values()) max = Math.max(max, ...row.rtts);
    ctx.font = "12px system-ui, sans-serif";
    let line = 0;
    for (const [pid, row] of this.peers) {
      ctx.strokeStyle = ctx.fillStyle = row.color;
      ctx.beginPath();
      row.rtts.forEach((r, i) => ctx.lineTo(i * (plotW / CAPACITY), h - 2 - (r / max) * (h - 6)));
      ctx.stroke();
      const rtt = row.rtts.length ? row.rtts[row.rtts.length - 1].toFixed(1) : "-";
      const text = `${pid.slice(0, 6)}  rtt ${rtt} ms  loss ${(row.loss * 100).toFixed(0)} %  ${row.path ?? "?"}`;
      ctx.fillText(text, plotW + 8, 14 + 14 * line++);
    }
    ctx.fillStyle = "#888";
    ctx.fillText(`${max.toFixed(0)} ms`, 2, 12);
  }
}
