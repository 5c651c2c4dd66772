/**
 * The flat `meta.yaml` files of MLflow's file store: a block mapping of scalars, written by PyYAML
 * (`safe_dump`, sorted keys). We read what PyYAML writes, including quoted scalars folded over
 * several lines, and write the same shape so that either side can read the other's files.
 */

export type MetaValue = string | number | null | [];
export type Meta = Record<string, MetaValue>;

const RESERVED = /^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|y|Y|n|N)$/;
const NUMBER_LIKE = /^[-+]?(?:\.?\d|\.inf|\.nan|0x|0o)/i;
const PLAIN_SAFE = /^[A-Za-z_/][\w./:@+\- ]*$/;

export function formatScalar(value: MetaValue): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "[]";
  if (typeof value === "number") return String(value);
  if (
    PLAIN_SAFE.test(value) &&
    !RESERVED.test(value) &&
    !NUMBER_LIKE.test(value) &&
    !value.endsWith(" ") &&
    !value.includes(": ") &&
    !value.includes(" #")
  ) {
    return value;
  }
  // Double-quoted YAML accepts JSON string escapes, so JSON.stringify is a faithful encoder.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: YAML requires control characters escaped, so finding them is the point
  if (/[\x00-\x1f\x7f\u2028\u2029\ufeff]/.test(value)) return JSON.stringify(value);
  return `'${value.replace(/'/g, "''")}'`;
}

export function formatMeta(meta: Meta): string {
  return Object.keys(meta)
    .sort()
    .map((k) => `${k}: ${formatScalar(meta[k])}\n`)
    .join("");
}

/** Joins the physical lines of a folded scalar the way YAML does: a break is a space, a blank line a newline. */
function fold(lines: string[]): string {
  let out = "";
  let pendingBreaks = 0;
  lines.forEach((raw, i) => {
    const line = i === 0 ? raw : raw.trim();
    if (i > 0 && line === "") {
      pendingBreaks++;
      return;
    }
    if (i > 0) out += pendingBreaks > 0 ? "\n".repeat(pendingBreaks) : " ";
    pendingBreaks = 0;
    out += line;
  });
  return out;
}

const ESCAPES: Record<string, string> = {
  "0": "\0",
  a: "\x07",
  b: "\b",
  t: "\t",
  "\t": "\t",
  n: "\n",
  v: "\v",
  f: "\f",
  r: "\r",
  e: "\x1b",
  " ": " ",
  '"': '"',
  "/": "/",
  "\\": "\\",
  N: "\u0085",
  _: "\u00a0",
  L: "\u2028",
  P: "\u2029",
};

function unescapeDouble(body: string, where: string): string {
  let out = "";
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const e = body[++i];
    const hex = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
    if (hex) {
      const code = Number.parseInt(body.slice(i + 1, i + 1 + hex), 16);
      if (Number.isNaN(code)) throw new Error(`${where}: bad escape \\${e}`);
      out += String.fromCodePoint(code);
      i += hex;
    } else if (e !== undefined && e in ESCAPES) {
      out += ESCAPES[e];
    } else {
      throw new Error(`${where}: bad escape \\${e ?? ""}`);
    }
  }
  return out;
}

function parseScalar(text: string, where: string): MetaValue {
  const t = text.trim();
  if (t.startsWith("'")) {
    if (!t.endsWith("'") || t.length < 2) throw new Error(`${where}: unterminated quoted value`);
    return t.slice(1, -1).replace(/''/g, "'");
  }
  if (t.startsWith('"')) {
    if (!t.endsWith('"') || t.length < 2) throw new Error(`${where}: unterminated quoted value`);
    return unescapeDouble(t.slice(1, -1), where);
  }
  if (t === "" || t === "~" || /^null$/i.test(t)) return null;
  if (t === "[]") return [];
  if (/^[-+]?\d+$/.test(t)) return Number(t);
  return t;
}

/** Parses a meta.yaml; throws an Error naming the line on anything outside the flat shape. */
export function parseMeta(text: string, file = "meta.yaml"): Meta {
  const meta: Meta = {};
  const lines = text.split(/\r?\n/);
  let key: string | undefined;
  let chunk: string[] = [];
  let startLine = 0;
  const flush = () => {
    if (key === undefined) return;
    // Double-quoted scalars may end a line with `\` to continue without a space.
    const joined = fold(chunk).replace(/\\ (?=\S)/g, "");
    meta[key] = parseScalar(joined, `${file}:${startLine}`);
    key = undefined;
  };
  lines.forEach((line, i) => {
    if (line.startsWith("#") || line === "---") return;
    const top = /^([A-Za-z_][\w]*):(?:\s(.*)|$)/.exec(line);
    if (top && !/^\s/.test(line)) {
      flush();
      key = top[1];
      chunk = [top[2] ?? ""];
      startLine = i + 1;
    } else if (key !== undefined && (/^\s/.test(line) || line === "")) {
      chunk.push(line);
    } else if (line.trim() !== "") {
      throw new Error(`${file}:${i + 1}: unexpected line ${JSON.stringify(line.slice(0, 80))}`);
    }
  });
  flush();
  return meta;
}
