// Interop helper for tests/browser/test_js_interop.py: reads hex msgpack payloads, one
// per line, on stdin; writes the JS re-encoding of each decoded value (hex), or
// "ERR <name>" when the JS decoder refuses it.
import { createInterface } from "node:readline";
import { decode, encode, fromHex, toHex } from "../src/msgpack.js";

const out = [];
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  try {
    out.push(toHex(encode(decode(fromHex(line)))));
  } catch (err) {
    out.push(`ERR ${err.name}`);
  }
}
process.stdout.write(out.join("\n") + "\n");
