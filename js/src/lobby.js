// The lobby's websocket (PROTOCOL.md 1): open it and wait for `welcome`, requests
// matched to replies by `rid`, and listRooms(). The Session (netcode.js) builds on it.

import { NetcodeError } from "./msgpack.js";

/** A refused lobby request: ``code`` is PROTOCOL.md 1.8's (room_not_found, bad_token...). */
export class LobbyError extends NetcodeError {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}
export class ConnectTimeout extends NetcodeError {}

export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new ConnectTimeout(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** ``url`` with ``?token=`` (PROTOCOL.md 1.2) when one is given. */
export function lobbyUrl(url, token = null) {
  const u = new URL(url);
  if (token) u.searchParams.set("token", token);
  return u.toString();
}

/** A new lobby websocket, resolved with {ws, welcome} once `welcome` arrived. The
 *  caller installs its own onmessage/onclose afterwards; on failure the socket is closed. */
export async function openLobby(url, { token = null, timeoutMs = 10_000 } = {}) {
  const ws = new WebSocket(lobbyUrl(url, token));
  const welcome = new Promise((resolve, reject) => {
    ws.onerror = () => reject(new ConnectTimeout(`lobby ${url} unreachable`));
    ws.onclose = (e) => reject(new LobbyError("closed", `lobby closed (${e.code} ${e.reason})`));
    ws.onmessage = (e) => {
      const msg = parseLobby(e.data);
      if (msg?.type === "welcome") resolve(msg);
    };
  });
  try {
    return { ws, welcome: await withTimeout(welcome, timeoutMs, "no welcome from the lobby") };
  } catch (err) {
    ws.onclose = ws.onerror = ws.onmessage = null;
    ws.close();
    throw err;
  }
}

/** One server message, or null for anything that is not a JSON object (ignored). */
export function parseLobby(text) {
  if (typeof text !== "string") return null;
  try {
    const msg = JSON.parse(text);
    return msg !== null && typeof msg === "object" && !Array.isArray(msg) ? msg : null;
  } catch {
    return null;
  }
}

/** Requests on one lobby socket, each answered by the reply carrying its ``rid``. */
export class Requests {
  constructor() {
    this.rid = 0;
    this.pending = new Map();
  }

  send(ws, msg) {
    const rid = ++this.rid;
    const reply = new Promise((resolve, reject) => this.pending.set(rid, { resolve, reject }));
    ws.send(JSON.stringify({ ...msg, v: 1, rid }));
    return { rid, reply };
  }

  /** Settle the request ``msg`` answers; false if it answers none (an event). A
   *  quick_match_waiting reply is progress, not the answer: room_joined follows. */
  settle(msg) {
    if (msg.rid === undefined || msg.type === "quick_match_waiting") return false;
    const waiter = this.pending.get(msg.rid);
    if (!waiter) return false;
    this.pending.delete(msg.rid);
    if (msg.type === "error") waiter.reject(new LobbyError(msg.code, msg.message ?? ""));
    else waiter.resolve(msg);
    return true;
  }

  /** The socket is gone: every open request fails (a rejoin sends them again if needed). */
  failAll(reason) {
    for (const w of this.pending.values()) w.reject(new LobbyError("closed", reason));
    this.pending.clear();
  }
}

/** The public rooms of the lobby at ``url`` (``game``: only rooms whose metadata.game is
 *  it), as PROTOCOL.md 1.5 room_list: [{room, players, max_players, metadata, topology, locked}]. */
export async function listRooms(url, { game = null, token = null, timeoutMs = 10_000 } = {}) {
  const { ws } = await openLobby(url, { token, timeoutMs });
  const requests = new Requests();
  ws.onmessage = (e) => {
    const msg = parseLobby(e.data);
    if (msg) requests.settle(msg);
  };
  ws.onclose = () => requests.failAll("lobby closed");
  try {
    const { reply } = requests.send(ws, { type: "list_rooms", ...(game ? { game } : {}) });
    const msg = await withTimeout(reply, timeoutMs, "no room_list from the lobby");
    return Array.isArray(msg.rooms) ? msg.rooms : [];
  } finally {
    ws.onclose = null;
    ws.close(1000);
  }
}
