// src/netcode.d.ts declares exactly what src/netcode.js exports: every runtime export
// is typed and every declared class/function/const exists, with the same kind. The
// types themselves are checked by tsc (test/types/usage.ts, npm run typecheck).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readdirSync } from "node:fs";
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

// ------------------------------------------------------------------ events
// The event objects the JS builds (`_emit({ type: "X", ... })`) against the NetEvent
// union: same types, same fields. tsc checks the docs' usage against the .d.ts; this
// checks the .d.ts against what the code really emits.

const SRC = new URL("../src/", import.meta.url);

/** ``s`` split on ``sep`` outside brackets and string literals. */
function splitTop(s, sep) {
  const out = [];
  let depth = 0;
  let quote = null;
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    cur += c;
    if (quote) {
      if (c === "\\") cur += s[++i];
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'" || c === "`") quote = c;
    else if (c === sep && depth === 0) out.push(cur.slice(0, -1)), (cur = "");
    else if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) depth--;
  }
  return cur.trim() ? [...out, cur] : out;
}

/** The text inside the braces opening at ``s[i]``. */
function braced(s, i) {
  const [inner] = splitTop(s.slice(i + 1), "}");
  return inner;
}

const fieldsOf = (body, sep) => splitTop(body, sep).map((p) => p.trim().match(/^[A-Za-z_$][\w$]*/)[0]).sort().join(", ");

function emitted() {
  const out = new Map(); // type -> Set of field lists
  for (const file of readdirSync(SRC).filter((f) => f.endsWith(".js"))) {
    const text = readFileSync(new URL(file, SRC), "utf8");
    for (const m of text.matchAll(/(?:_emit|_lifecycle)\(\{ type: "(\w+)"/g)) {
      const fields = fieldsOf(braced(text, m.index + m[0].indexOf("{")), ",");
      out.set(m[1], new Set([...(out.get(m[1]) ?? []), fields]));
    }
  }
  return out;
}

function declaredEvents() {
  const text = DTS.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  const start = text.indexOf("export type NetEvent =");
  const [union] = splitTop(text.slice(start + "export type NetEvent =".length), ";");
  const out = new Map();
  for (const member of splitTop(union, "|").filter((m) => m.trim())) {
    const body = braced(member, member.indexOf("{"));
    out.set(body.match(/type: "(\w+)"/)[1], fieldsOf(body, ";"));
  }
  return out;
}

test("the events the JS emits are NetEvent's members, field for field", () => {
  const js = emitted();
  const dts = declaredEvents();
  assert.ok(js.size >= 10 && dts.size >= 10, `parsed ${js.size} emitted, ${dts.size} declared`);
  assert.deepEqual([...js.keys()].sort(), [...dts.keys()].sort());
  for (const [type, shapes] of js) {
    assert.deepEqual([...shapes], [dts.get(type)], `${type}: emitted with {${[...shapes].join("} / {")}}`);
  }
});
