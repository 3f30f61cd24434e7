// A TypeScript consumer of the client, type-checked (never run) by `npm run typecheck`
// (tests/browser/test_js_types.py): it uses the API as docs/BROWSER.md shows it, so
// src/netcode.d.ts cannot drift from the docs unnoticed. Each `@ts-expect-error` is a
// misuse the types must refuse: if the types loosen (an `any`), tsc reports the
// directive as unused and the check fails.

import {
  ConfigError,
  ConnectTimeout,
  DEFAULT_CHANNELS,
  DEFAULT_LIMITS,
  DecodeError,
  EncodeError,
  Float,
  Int,
  InterpolationBuffer,
  LobbyError,
  NetcodeError,
  Session,
  connect,
  decode,
  encode,
  fromHex,
  listRooms,
  payloadOffset,
  recommendedDelay,
  toHex,
} from "../../src/netcode.js";
import type {
  ChannelConfig,
  ConnectOptions,
  Decoded,
  Entities,
  Limits,
  NetEvent,
  PeerStats,
  RoomSummary,
  Value,
} from "../../src/netcode.js";
// The package's own name resolves through package.json "exports" -> "types".
import * as pkg from "netcode-client";
// The codec alone (the "./msgpack" subpath has its own types).
import * as msgpack from "netcode-client/msgpack";

export const packed: Uint8Array = msgpack.encode({ x: new msgpack.Float(1), n: new msgpack.Int(2) });
export const unpacked: msgpack.Decoded = msgpack.decode(packed, msgpack.DEFAULT_LIMITS);
// @ts-expect-error: a Date is no Value (the codec refuses it at the send call)
msgpack.encode(new Date());

declare const player: { x: number; y: number };
declare function draw(id: number | bigint | string, x: Decoded, y: Decoded): void;
declare function forget(peerId: string): void;

const LOBBY = "ws://127.0.0.1:8765/";

/** docs/BROWSER.md "Your own page". */
export async function ownPage(): Promise<void> {
  const s = await connect(LOBBY, { room: "K7QX2M" });
  const created: Session = await connect(LOBBY, { create: true });
  const off: () => void = s.on("StateReceived", (ev) => console.log(ev.peerId, ev.data, ev.seq, ev.sentUs));
  off();
  s.sendState({ x: new Float(player.x), y: new Float(player.y) });
  for (const ev of s.poll()) {
    if (ev.type === "SnapshotReceived") drawAll(ev.entities);
    if (ev.type === "PeerLeft" || ev.type === "PeerLost") forget(ev.peerId);
  }
  s.sendEvent({ chat: "hi" });
  await created.close();
  await s.close();
}

function drawAll(entities: Entities): void {
  for (const [id, e] of entities) draw(id, e["x"] ?? null, e["y"] ?? null);
}

/** Every connect option of the table, with its documented default or an example. */
export async function allOptions(): Promise<Session> {
  const channels: readonly ChannelConfig[] = [
    ...DEFAULT_CHANNELS,
    { label: "chat", id: 3, ordered: true, maxRetransmits: null, maxPacketLifeTime: null },
  ];
  const limits: Limits = { ...DEFAULT_LIMITS, maxDepth: 8 };
  const options: ConnectOptions = {
    room: null,
    create: false,
    maxPlayers: 8,
    metadata: { game: "arena" },
    topology: "star",
    private: false,
    rejoinToken: sessionStorage.getItem("netcode-token"),
    quickMatch: null,
    autoRejoin: true,
    token: null,
    iceServers: [{ urls: "stun:127.0.0.1:3478" }],
    iceTransportPolicy: "relay",
    candidateFilter: (c) => (c.type === "host" ? { candidate: c.candidate.replace("10.0.0.2", "127.0.0.1"), sdpMid: c.sdpMid } : true),
    channels,
    quantize: { x: 0.01, y: 0.01 },
    limits,
    connectTimeoutMs: 10_000,
    lobbyTimeoutMs: 10_000,
    heartbeatIntervalMs: 250,
    peerTimeoutMs: 3_000,
    ackEvery: 16,
    statsIntervalMs: null,
    stateBufferThreshold: 2_400,
    reliableBufferLimit: 65_536,
    maxQueuedStates: 16,
    maxQueuedEvents: 1_024,
    budget: { stateMsgsPerS: 360, burstS: 2, abuseAfterS: 1 },
  };
  const quick = await connect(LOBBY, {
    quickMatch: { game: "arena", size: 4, topology: "mesh", metadata: {}, timeoutMs: null },
  });
  await quick.close();
  return connect(LOBBY, options);
}

/** Session properties and methods (the Session table). */
export async function sessionApi(s: Session): Promise<void> {
  const id: string = s.peerId;
  const room: string = s.room;
  const topology: "mesh" | "star" = s.topology;
  const host: string | null = s.host;
  const flags: boolean[] = [s.isHost, s.closed, s.lobbyConnected, s.locked];
  for (const [pid, p] of Object.entries(s.peers)) console.log(pid, p.state, p.viaHost ?? false);
  const token: string | null = s.reconnectToken;
  if (token !== null) sessionStorage.setItem("netcode-token", token);
  const numbers: number[] = [s.tokenExpiresS, s.maxPlayers];
  const meta: Record<string, unknown> = s.metadata;
  console.log(id, room, topology, host, flags, numbers, meta);

  const sent: boolean = s.sendState({ n: 2n ** 60n, i: new Int(3), f: new Float(2), b: new Uint8Array(2) }, "peer");
  s.sendState([1, "two", null, true, new Map<number | string, Value>([[1, "int key"], ["1", "str key"]])]);
  s.sendEvent({ chat: "hi" }, null, { channel: "chat" });
  s.sendEvent({ chat: "dm" }, id);
  const world = new Map<number | string, Record<string, Value>>([[1, { x: 1.5, y: 2 }], ["flag", { held: true }]]);
  const snapped: boolean = s.sendSnapshot(world, host);
  s.sendSnapshot({ "7": { x: 0 } });
  console.log(sent, snapped);

  const ev: NetEvent = await s.nextEvent(1_000);
  const next: NetEvent = await s.nextEvent();
  console.log(ev.type, next.type);
  const stats: PeerStats = s.stats(id);
  console.log(recommendedDelay(30, stats.jitterMs), stats.rttMs, stats.loss, stats.badPackets, stats.unmatchedPongs);

  await s.kick("peer", "cheating");
  await s.kick("peer");
  await s.lock();
  await s.lock(false);
  await s.updateMetadata({ game: "arena", map: 2 });
  const rooms: RoomSummary[] = await s.listRooms("arena");
  await s.listRooms();
  for (const r of rooms) console.log(r.room, r.players, r.max_players, r.metadata, r.topology, r.locked);
}

/** Every event type and its fields (the Events paragraph), narrowed by `type`. */
export function events(s: Session): void {
  for (const ev of s.poll()) {
    switch (ev.type) {
      case "PeerJoined": console.log(ev.peerId); break;
      case "PeerConnected": console.log(ev.peerId, ev.connectMs.toFixed(1)); break;
      case "PeerLeft": console.log(ev.peerId, ev.reason); break;
      case "PeerLost": {
        if (ev.reason === "mismatch") console.warn(ev.detail);
        const r: string = ev.reason;
        console.log(ev.peerId, r);
        break;
      }
      case "PeerConnectFailed": console.log(ev.peerId, ev.reason); break;
      case "StateReceived": console.log(ev.peerId, ev.data, ev.seq, ev.sentUs); break;
      case "EventReceived": console.log(ev.peerId, ev.data, ev.channel, ev.size); break;
      case "SnapshotReceived": console.log(ev.peerId, ev.seq, ev.entities.size, ev.sentUs); break;
      case "StatsUpdated": console.log(ev.peerId, ev.stats.rttMs); break;
      case "PeerReconnecting": console.log(ev.peerId); break;
      case "PeerReconnected": console.log(ev.peerId); break;
      case "HostChanged": console.log(ev.peerId, ev.previous ?? "none", ev.you); break;
      case "RoomUpdated": console.log(ev.metadata, ev.locked); break;
      case "QuickMatchWaiting": console.log(ev.game, ev.size, ev.waiting); break;
      case "Kicked": console.log(ev.reason); break;
      case "LobbyReconnecting": break;
      case "LobbyRejoined": console.log(ev.peerId); break;
      case "LobbyClosed": console.log(ev.code, ev.reason); break;
      default: {
        const none: never = ev; // every event type is handled above
        console.log(none);
      }
    }
  }
  s.on("HostChanged", (ev) => console.log(ev.you, ev.previous));
  s.on("LobbyClosed", (ev) => console.log(ev.code + 1, ev.reason.length));
}

/** listRooms() and the error classes (the API paragraph). */
export async function lobbyAndErrors(): Promise<void> {
  const rooms: RoomSummary[] = await listRooms(LOBBY, { game: "arena", token: null, timeoutMs: 5_000 });
  await listRooms(LOBBY);
  console.log(rooms.map((r) => r.room));
  try {
    await connect(LOBBY, { room: "NOPE42" });
  } catch (err) {
    if (err instanceof LobbyError) console.log(err.code, err.message);
    else if (err instanceof ConnectTimeout) console.log("lobby silent");
    else if (err instanceof EncodeError || err instanceof DecodeError || err instanceof ConfigError) throw err;
    else if (err instanceof NetcodeError) console.log(err.name);
  }
  const base: NetcodeError[] = [
    new LobbyError("room_not_found", "no such room"), new ConnectTimeout("no room"),
    new EncodeError("x"), new DecodeError("y"), new ConfigError("z"),
  ];
  console.log(base.length);
}

/** The codec table: encode/decode, Float/Int, DEFAULT_LIMITS, hex, payloadOffset. */
export function codec(): Decoded {
  const bytes: Uint8Array = encode({ x: new Float(2), big: new Int(2n ** 60n), k: new Map([[new Int(1), "v"]]) });
  encode([1, 2], DEFAULT_LIMITS);
  const frozen: readonly Value[] = Object.freeze([1, "a"]);
  encode(frozen);
  const n: number = new Float(2).value + Number(new Int(3).value) + new Float(1).valueOf() + new Int(4).valueOf();
  const hex: string = toHex(bytes);
  const again: Uint8Array = fromHex(hex);
  const off: number = payloadOffset(again, 1);
  console.log(n, off, DEFAULT_LIMITS.maxPacketBytes, DEFAULT_CHANNELS[0]?.label);
  decode(bytes.buffer as ArrayBuffer, { ...DEFAULT_LIMITS });
  return decode(again);
}

/** docs/BROWSER.md "Interpolation": options, properties and methods. */
export function interpolation(ev: Extract<NetEvent, { type: "SnapshotReceived" }>): void {
  const buf = new InterpolationBuffer({ snapshotRate: 30, teleport: { x: 200, y: 200 } });
  buf.push(performance.now() / 1000, ev.entities);
  for (const [id, e] of buf.sample(performance.now() / 1000)) draw(id, e["x"] ?? null, e["y"] ?? null);
  const full = new InterpolationBuffer({
    delay: null, snapshotRate: 60, maxExtrapolation: 0.1, teleport: null, fields: ["x", "y"],
    capacity: 64, minSpacing: null,
  });
  new InterpolationBuffer();
  new InterpolationBuffer({ fields: new Set(["x"]), delay: recommendedDelay(60) });
  full.delay = recommendedDelay(30, 12.5);
  full.maxExtrapolation = 0.05;
  const accepted: boolean = full.push(1.0, new Map([[1, { x: 1, y: 2 }]]));
  full.push(1.1, { "1": { x: 2, y: 3 } });
  const at: Entities = full.sampleAt(0.9);
  const lag: number | null = full.lag(1.2);
  const props: (number | null)[] = [
    full.minSpacing, full.capacity, full.length, full.newestTime, full.droppedSnapshots, full.droppedEntities,
  ];
  full.clear();
  console.log(accepted, at.size, lag, props);
}

/** The package entry point and the relative import are the same declarations. */
export const samePackage: [typeof pkg.connect, typeof pkg.InterpolationBuffer] = [connect, InterpolationBuffer];

/** Misuses the types must refuse. */
export async function misuses(s: Session, buf: InterpolationBuffer): Promise<void> {
  // @ts-expect-error a room code is a string
  await connect(LOBBY, { room: 42 });
  // @ts-expect-error unknown option (a typo of maxPlayers)
  await connect(LOBBY, { maxPlayer: 4 });
  // @ts-expect-error topology is "mesh" or "star"
  await connect(LOBBY, { topology: "ring" });
  // @ts-expect-error quickMatch needs game and size
  await connect(LOBBY, { quickMatch: { game: "arena" } });
  // @ts-expect-error StateReceived has no channel (EventReceived has)
  s.on("StateReceived", (ev) => ev.channel);
  // @ts-expect-error no such event type
  s.on("PeerDisconnected", () => undefined);
  for (const ev of s.poll()) {
    // @ts-expect-error PeerLeft has no detail (PeerLost has)
    if (ev.type === "PeerLeft") console.log(ev.detail);
  }
  // @ts-expect-error undefined is refused by the codec (null is nil)
  s.sendState({ x: undefined });
  // @ts-expect-error a Date is refused by the codec
  s.sendEvent(new Date());
  // @ts-expect-error snapshot entity ids are ints or strings, not Int wrappers (EncodeError)
  s.sendSnapshot(new Map([[new Int(1), { x: 1 }]]));
  // @ts-expect-error a Session comes from connect()
  new Session();
  // @ts-expect-error snapshotRate is a number
  new InterpolationBuffer({ snapshotRate: "30" });
  // @ts-expect-error capacity is read-only
  buf.capacity = 8;
  // @ts-expect-error Float wraps a number
  new Float("2.0");
  // @ts-expect-error LobbyError takes the lobby's code and a message
  new LobbyError("room_not_found");
  // @ts-expect-error DEFAULT_LIMITS is frozen
  DEFAULT_LIMITS.maxDepth = 4;
  // @ts-expect-error recommendedDelay needs the snapshot rate
  recommendedDelay();
}
