// Types of the netcode browser client (docs/JS_CLIENT.md). No build step: the .js
// files are the ES modules; this file is for editors and TypeScript users.

/** What travels: see the JS <-> Python table in docs/PROTOCOL.md 2.11. */
export type Key = string | number | bigint | Int;
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | ArrayBuffer
  | Float
  | Int
  | Value[]
  | Map<Key, Value>
  | { [field: string]: Value };
/** What arrives: maps with any int key are Maps, others null-prototype objects. */
export type Decoded =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Decoded[]
  | Map<number | bigint | string, Decoded>
  | { [field: string]: Decoded };

export class NetcodeError extends Error {}
/** Thrown by a send call for a value netcode refuses; nothing is sent. */
export class EncodeError extends NetcodeError {}
/** Bytes that break the protocol (counted in badPackets, never thrown to the game). */
export class DecodeError extends NetcodeError {}
export class LobbyError extends NetcodeError {
  code: string;
}
export class ConnectTimeout extends NetcodeError {}

/** Always a msgpack float64 (2.0 stays a float for Python). */
export class Float {
  constructor(value: number);
  readonly value: number;
}
/** Always a msgpack int: a safe integer or a BigInt within int64/uint64. */
export class Int {
  constructor(value: number | bigint);
  readonly value: number | bigint;
}

export interface Limits {
  maxPacketBytes: number;
  maxStateBytes: number;
  maxEventBytes: number;
  maxDepth: number;
  maxContainerLen: number;
  maxStrLen: number;
  maxContainers: number;
  maxSnapshotEntities: number;
  maxEntityFields: number;
  maxSnapshotFields: number;
  maxSnapshotBytes: number;
}
export const DEFAULT_LIMITS: Readonly<Limits>;
export function encode(value: Value, limits?: Limits): Uint8Array;
export function decode(bytes: Uint8Array | ArrayBuffer, limits?: Limits): Decoded;

export interface ChannelConfig {
  label: string;
  id: number;
  ordered?: boolean;
  maxRetransmits?: number | null;
  maxPacketLifeTime?: number | null;
}
export const DEFAULT_CHANNELS: readonly ChannelConfig[];

export interface ConnectOptions {
  room?: string | null;
  create?: boolean;
  maxPlayers?: number;
  metadata?: Record<string, unknown>;
  topology?: "mesh" | "star" | null;
  token?: string | null;
  channels?: readonly ChannelConfig[];
  /** null (default): the lobby's welcome.ice_servers. */
  iceServers?: RTCIceServer[] | null;
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Which of our own candidates to signal (mDNS .local ones never are): false drops
   *  it, true sends it, an RTCIceCandidateInit is sent instead (labs rewrite addresses). */
  candidateFilter?: ((c: RTCIceCandidate) => boolean | RTCIceCandidateInit) | null;
  limits?: Limits;
  /** {field: step}: as SessionConfig.snapshot_quantize; both ends the same. */
  quantize?: Record<string, number> | null;
  connectTimeoutMs?: number;
  lobbyTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  peerTimeoutMs?: number;
  statsIntervalMs?: number | null;
  stateBufferThreshold?: number;
  reliableBufferLimit?: number;
  /** Send an ACK after this many accepted packets when we sent nothing (<= 31). */
  ackEvery?: number;
  maxQueuedStates?: number;
  maxQueuedEvents?: number;
  budget?: Partial<{
    stateMsgsPerS: number;
    stateBytesPerS: number;
    eventMsgsPerS: number;
    eventBytesPerS: number;
    pingsAnsweredPerS: number;
    burstS: number;
    abuseAfterS: number;
  }>;
}

export interface PeerStats {
  rttMs: number;
  jitterMs: number;
  loss: number;
  packetsSent: number;
  packetsReceived: number;
  packetsAcked: number;
  kbpsSent: number;
  kbpsReceived: number;
  staleDrops: number;
  stateDrops: number;
  badPackets: number;
  rateLimited: number;
  pingsIgnored: number;
  unmatchedPongs: number;
}

export type Entities = Map<number | bigint | string, { [field: string]: Decoded }>;
export type NetEvent =
  | { type: "PeerJoined"; peerId: string }
  | { type: "PeerConnected"; peerId: string; connectMs: number }
  | { type: "PeerLeft"; peerId: string; reason: string }
  /** reason: "timeout" | "closed" | "abuse" | "overflow" | "mismatch" (the peers'
   *  configurations differ, PROTOCOL.md 2.1.1: detail names each difference; comes
   *  without PeerConnected, at once instead of a connect timeout). */
  | { type: "PeerLost"; peerId: string; reason: "timeout" | "closed" | "abuse" | "overflow" | "mismatch" | (string & {}); detail: string }
  | { type: "PeerConnectFailed"; peerId: string; reason: string }
  | { type: "StateReceived"; peerId: string; data: Decoded; seq: number; sentUs: number }
  | { type: "EventReceived"; peerId: string; data: Decoded; channel: string; size: number }
  | { type: "SnapshotReceived"; peerId: string; seq: number; entities: Entities; sentUs: number }
  | { type: "StatsUpdated"; peerId: string; stats: PeerStats }
  | { type: "Kicked"; reason: string }
  | { type: "LobbyClosed" };

export class Session {
  readonly peerId: string;
  readonly room: string;
  readonly topology: "mesh" | "star";
  readonly host: string | null;
  readonly isHost: boolean;
  readonly closed: boolean;
  readonly peers: Record<string, { state: string; viaHost?: boolean }>;
  sendState(data: Value, to?: string | null): boolean;
  sendEvent(data: Value, to?: string | null, options?: { channel?: string }): void;
  sendSnapshot(
    entities: Map<Key, Record<string, Value>> | Record<string, Record<string, Value>>,
    to?: string | null,
  ): boolean;
  poll(): NetEvent[];
  nextEvent(timeoutMs?: number | null): Promise<NetEvent>;
  on<T extends NetEvent["type"]>(type: T, fn: (ev: Extract<NetEvent, { type: T }>) => void): () => void;
  stats(peerId: string): PeerStats;
  close(): Promise<void>;
}

export function connect(url: string, options?: ConnectOptions): Promise<Session>;

export class InterpolationBuffer {
  constructor(options?: { snapshotRate?: number; delay?: number | null; capacity?: number });
  delay: number;
  droppedSnapshots: number;
  push(t: number, entities: Entities | Record<string, Record<string, Decoded>>): boolean;
  sample(now: number): Entities;
}
