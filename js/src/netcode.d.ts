// Types of the netcode browser client (docs/BROWSER.md). No build step: the .js
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
  | readonly Value[]
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
  /** The message is ``${code}: ${message}``. */
  constructor(code: string, message: string);
  /** PROTOCOL.md 1.8's error code (room_not_found, bad_token...), or "closed" / "not_connected". */
  code: string;
}
export class ConnectTimeout extends NetcodeError {}

/** Always a msgpack float64 (2.0 stays a float for Python). */
export class Float {
  constructor(value: number);
  readonly value: number;
  valueOf(): number;
}
/** Always a msgpack int: a safe integer or a BigInt within int64/uint64. */
export class Int {
  constructor(value: number | bigint);
  readonly value: number | bigint;
  /** Number(value): a BigInt beyond 2^53 is rounded. */
  valueOf(): number;
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
/** Where the element after the first ``skip`` ones of an envelope array starts. */
export function payloadOffset(bytes: Uint8Array, skip: number): number;
export function toHex(bytes: Uint8Array): string;
export function fromHex(hex: string): Uint8Array;

export interface ChannelConfig {
  label: string;
  id: number;
  ordered?: boolean;
  maxRetransmits?: number | null;
  maxPacketLifeTime?: number | null;
}
export const DEFAULT_CHANNELS: readonly ChannelConfig[];

export interface ConnectOptions {
  /** Join this room (a code); with ``rejoinToken``: the token's room. */
  room?: string | null;
  create?: boolean;
  maxPlayers?: number;
  private?: boolean;
  metadata?: Record<string, unknown>;
  topology?: "mesh" | "star" | null;
  /** The lobby's access token (PROTOCOL.md 1.2), sent as ?token=. */
  token?: string | null;
  /** Take a seat back (session.reconnectToken of an earlier session, e.g. before a reload). */
  rejoinToken?: string | null;
  /** Be matched with ``size - 1`` others waiting for ``game``; ``timeoutMs`` null waits
   *  until matched (QuickMatchWaiting events meanwhile); on timeout: ConnectTimeout. */
  quickMatch?: {
    game: string;
    size: number;
    topology?: "mesh" | "star";
    metadata?: Record<string, unknown>;
    timeoutMs?: number | null;
  } | null;
  /** Take the seat back automatically after the lobby websocket drops (default true). */
  autoRejoin?: boolean;
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
  | { type: "PeerReconnecting"; peerId: string }
  | { type: "PeerReconnected"; peerId: string }
  | { type: "HostChanged"; peerId: string; previous: string | null; you: boolean }
  | { type: "RoomUpdated"; metadata: Record<string, unknown>; locked: boolean }
  | { type: "QuickMatchWaiting"; game: string; size: number; waiting: number }
  | { type: "Kicked"; reason: string }
  /** Our lobby websocket dropped; peer links stay up while we rejoin. */
  | { type: "LobbyReconnecting" }
  | { type: "LobbyRejoined"; peerId: string }
  /** The lobby connection is over for good (``reason``: e.g. bad_token, rejoin_expired). */
  | { type: "LobbyClosed"; code: number; reason: string };

/** A public room as room_list carries it (PROTOCOL.md 1.5). */
export interface RoomSummary {
  room: string;
  players: number;
  max_players: number;
  metadata: Record<string, unknown>;
  topology: "mesh" | "star";
  locked: boolean;
}

export class Session {
  /** Sessions come from connect(). */
  private constructor();
  readonly peerId: string;
  readonly room: string;
  readonly topology: "mesh" | "star";
  readonly host: string | null;
  readonly isHost: boolean;
  readonly closed: boolean;
  readonly peers: Record<string, { state: string; viaHost?: boolean }>;
  /** room_joined.token: pass as ``rejoinToken`` to take the seat back (null once kicked). */
  readonly reconnectToken: string | null;
  /** How long the lobby keeps our seat after our websocket drops (s). */
  readonly tokenExpiresS: number;
  readonly lobbyConnected: boolean;
  readonly metadata: Record<string, unknown>;
  readonly locked: boolean;
  readonly maxPlayers: number;
  /** Host only (else LobbyError "not_owner"): remove a member for good. */
  kick(peerId: string, reason?: string): Promise<void>;
  /** Host only: a locked room refuses join_room; rejoin still works. */
  lock(locked?: boolean): Promise<void>;
  /** Host only: replace the room's metadata. */
  updateMetadata(metadata: Record<string, unknown>): Promise<void>;
  listRooms(game?: string | null): Promise<RoomSummary[]>;
  sendState(data: Value, to?: string | null): boolean;
  sendEvent(data: Value, to?: string | null, options?: { channel?: string }): void;
  /** Entity ids: safe integers, BigInts or strings (an Int wrapper is an EncodeError). */
  sendSnapshot(
    entities: Map<number | bigint | string, Record<string, Value>> | Record<string, Record<string, Value>>,
    to?: string | null,
  ): boolean;
  poll(): NetEvent[];
  nextEvent(timeoutMs?: number | null): Promise<NetEvent>;
  on<T extends NetEvent["type"]>(type: T, fn: (ev: Extract<NetEvent, { type: T }>) => void): () => void;
  stats(peerId: string): PeerStats;
  close(): Promise<void>;
}

export function connect(url: string, options?: ConnectOptions): Promise<Session>;
/** The lobby's public rooms (``game``: metadata.game equals it), on a short-lived socket. */
export function listRooms(
  url: string,
  options?: { game?: string | null; token?: string | null; timeoutMs?: number },
): Promise<RoomSummary[]>;

/** A bad setting or time argument of the game (InterpolationBuffer), never network data. */
export class ConfigError extends NetcodeError {}
/** Two snapshot intervals plus twice the jitter, in seconds (Python's recommended_delay). */
export function recommendedDelay(snapshotRate: number, jitterMs?: number): number;

/** Python's netcode.protocol.interpolation.InterpolationBuffer (docs/BROWSER.md). */
export class InterpolationBuffer {
  constructor(options?: {
    /** Default recommendedDelay(snapshotRate). */
    delay?: number | null;
    snapshotRate?: number;
    /** Seconds past the newest snapshot that motion is extrapolated (default 0.1). */
    maxExtrapolation?: number;
    /** {field: max change}: a bigger change snaps; also caps extrapolation. */
    teleport?: Record<string, number> | null;
    /** Only these fields are interpolated (default every number). */
    fields?: Iterable<string> | null;
    capacity?: number;
    /** Default 0.25 / snapshotRate: a push closer than this to a held one is refused. */
    minSpacing?: number | null;
  });
  delay: number;
  maxExtrapolation: number;
  readonly minSpacing: number;
  readonly capacity: number;
  readonly length: number;
  readonly newestTime: number | null;
  droppedSnapshots: number;
  droppedEntities: number;
  push(t: number, entities: Entities | Record<string, Record<string, Decoded>>): boolean;
  sample(now: number): Entities;
  sampleAt(renderTime: number): Entities;
  lag(now: number): number | null;
  clear(): void;
}
