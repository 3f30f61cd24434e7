// Types of the `netcode-client/msgpack` subpath: the typed codec alone (its
// declarations live in netcode.d.ts, which re-exports the whole module).
export {
  NetcodeError,
  EncodeError,
  DecodeError,
  DEFAULT_LIMITS,
  Float,
  Int,
  encode,
  decode,
  payloadOffset,
  toHex,
  fromHex,
} from "./netcode.js";
export type { Value, Decoded, Limits } from "./netcode.js";
