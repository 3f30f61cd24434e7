// Test doubles for RTCPeerConnection and RTCDataChannel (no browser): a PeerLink or a
// Session runs its signaling against these; tests open channels by hand.

export class FakeChannel {
  constructor(label) {
    this.label = label;
    this.readyState = "connecting";
    this.bufferedAmount = 0;
  }
  send() {}
}

export class FakePc {
  constructor() {
    this.remoteDescription = null;
    this.localDescription = null;
  }
  createDataChannel(label) {
    return new FakeChannel(label);
  }
  async createOffer() {
    return { type: "offer", sdp: "v=0 offer" };
  }
  async createAnswer() {
    return { type: "answer", sdp: "v=0 answer" };
  }
  async setLocalDescription(d) {
    this.localDescription = d;
  }
  async setRemoteDescription(d) {
    this.remoteDescription = d;
  }
  async addIceCandidate() {}
  close() {
    this.closed = true;
  }
}
