// src/netcode.d.ts declares exactly what src/netcode.js exports: every runtime export
// is typed and every declared class/function/const exists, with the same kind. The
// types themselves are checked by tsc (test/types/usage.ts, npm run typecheck).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as netcode from "../src/netcode.js";

const DTS = readFileSync(fileURLToPath(new URL("../src/netcode.d.ts", import.meta.url)), "utf8");
const DECLARATION = /^export\s+(?:declare\s+)?(?:abstract\s+)?(class|function|const|let|var|enum|type|interface)\s+([A-Za-z_$][\w$]*)/gm;

/** name -> kind of every top-level `export <kind> <name>` (a function's overloads once). */
function declared(text) {
  const out = new Map();
  for (const [, kind, name] of text.matchAll(DECLARATION)) {
    assert.ok(!out.has(name) || (kind === "function" && out.get(name) === "function"), `${name} declared twice`);
    out.set(name, kind);
  }
  return out;
}

const TYPE_ONLY = new Set(["type", "interface"]);
const decls = declared(DTS);
const runtime = (kinds) => [...decls].filter(([, k]) => kinds(k)).map(([n]) => n).sort();

test("the .d.ts uses only `export <declaration>` forms (the regex sees every export)", () => {
  // export { a, b }, export * from, export default and export = would hide names from
  // the parse below; the file does not use them, and this keeps it so.
  const other = DTS.split("\n").filter((l) => /^export\b/.test(l) && !new RegExp(DECLARATION.source).test(l));
  assert.deepEqual(other, []);
  assert.ok(decls.size >= 20, `only ${decls.size} declarations parsed`);
});

test("every runtime export of netcode.js is declared in netcode.d.ts, and nothing more", () => {
  const exported = Object.keys(netcode).sort();
  const values = runtime((k) => !TYPE_ONLY.has(k));
  assert.deepEqual(
    { missingFromDts: exported.filter((n) => !values.includes(n)), missingFromJs: values.filter((n) => !exported.includes(n)) },
    { missingFromDts: [], missingFromJs: [] },
  );
});

test("declared classes and functions are functions in the JS, constants are not", () => {
  for (const [name, kind] of decls) {
    if (TYPE_ONLY.has(kind)) continue;
    const isFn = typeof netcode[name] === "function";
    assert.equal(isFn, kind === "class" || kind === "function", `${name}: declared ${kind}, JS has ${typeof netcode[name]}`);
    if (kind === "class") assert.ok(netcode[name].prototype, `${name} is not constructible`);
  }
});

test("type-only names (type/interface) do not shadow a runtime export", () => {
  const types = runtime((k) => TYPE_ONLY.has(k));
  assert.ok(types.includes("NetEvent") && types.includes("ConnectOptions"), types.join(", "));
  assert.deepEqual(types.filter((n) => n in netcode), []);
});
