#!/usr/bin/env node
// `make backup` / `make restore`: the ledger (D1 `DB`, and `DB_1` … of a sharded ledger) and the
// token vault (KV `TOKENS`) in one file, encrypted with a key the operator holds. See
// docs/operate/backups.md.
//
//   node scripts/backup.mjs backup  [options]
//   node scripts/backup.mjs restore BACKUP_FILE [options]
//
// Options (and the environment variables that set them):
//   --target local|production  BACKUP_TARGET  local (default): the `make dev` state, through
//                              `wrangler --local`; production: `[env.production]` of
//                              wrangler.toml, through `wrangler --remote --env production`.
//   --config FILE              BACKUP_CONFIG  the wrangler configuration (local: the one
//                              `make dev` generates, $DEV_DIR/dev/wrangler.json, else
//                              wrangler.toml; production: wrangler.toml).
//   --persist-to DIR           BACKUP_PERSIST_TO  local state (default $DEV_DIR/state, DEV_DIR
//                              being .wrangler).
//   --dir DIR                  BACKUP_DIR  where `backup` writes (default backups/).
//   --key-file FILE            BACKUP_KEY_FILE  the key, 32 bytes in base64 (default
//                              ${XDG_CONFIG_HOME:-~/.config}/recurring-edge/backup.key, which
//                              `backup` creates when it does not exist; `restore` never does).
//   --only ledger|vault        (restore) one half only: after a restore that stopped between
//                              the two.
//
// The file: one line of clear JSON (what the backup holds, never a secret), then the payload:
// gzip of {ledger SQL export (each shard's), vault records}, encrypted with AES-256-GCM under the key, the
// header line being authenticated with it. Card tokens never reach the disk in clear: wrangler's
// output goes from its pipe into the cipher, and back through a pipe into `kv bulk put`. The
// D1 export (no tokens: the ledger holds none) is written by wrangler to a private temporary
// directory and deleted as soon as it is read.

import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";
import zlib from "node:zlib";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const FORMAT = "recurring-edge-backup";
// Version 1: one database. Version 2: a sharded ledger, one export per database; a reader of
// version 1 alone refuses it rather than restore a part of the ledger.
const VERSION_ONE_DATABASE = 1;
const VERSION_SHARDED = 2;
const CIPHER = "aes-256-gcm";
const TAG_BYTES = 16;
const MAX_HEADER_BYTES = 8192;
// KV's bulk read takes at most 100 keys a call.
const BULK_GET_KEYS = 100;

class Failure extends Error {}
const fail = (message) => {
  throw new Failure(message);
};
const say = (message) => process.stderr.write(`${message}\n`);

// --- options ---------------------------------------------------------------------------------

function parseArgs(argv) {
  const [command, ...rest] = argv;
  const opts = { command, positional: [] };
  if (command === "-h" || command === "--help") return { help: true, positional: [] };
  const takes = new Set(["--target", "--config", "--persist-to", "--dir", "--key-file", "--only"]);
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === "-h" || arg === "--help") {
      opts.help = true;
    } else if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg : arg.slice(0, eq);
      if (!takes.has(name)) fail(`unknown option ${name} (see --help)`);
      let value = eq < 0 ? rest[++i] : arg.slice(eq + 1);
      if (value === undefined || value === "") fail(`${name} needs a value`);
      opts[name.slice(2)] = value;
    } else {
      opts.positional.push(arg);
    }
  }
  return opts;
}

const USAGE = `usage: node scripts/backup.mjs backup [options]              (make backup)
       node scripts/backup.mjs restore BACKUP_FILE [options]  (make restore BACKUP=FILE)

  --target local|production  BACKUP_TARGET      local (default): the make dev state;
                                                production: [env.production], remote
  --config FILE              BACKUP_CONFIG      the wrangler configuration (local: make dev's
                                                .wrangler/dev/wrangler.json, else wrangler.toml)
  --persist-to DIR           BACKUP_PERSIST_TO  the local state (default .wrangler/state)
  --dir DIR                  BACKUP_DIR         where backup writes (default backups/)
  --key-file FILE            BACKUP_KEY_FILE    the key (default
                                                \${XDG_CONFIG_HOME:-~/.config}/recurring-edge/backup.key,
                                                created by the first backup)
  --only ledger|vault                           restore one half only

See docs/operate/backups.md.`;

function settings(opts) {
  const env = process.env;
  const target = opts.target ?? env.BACKUP_TARGET ?? "local";
  if (target !== "local" && target !== "production") {
    fail(`--target must be local or production, not '${target}'`);
  }
  const devDir = path.resolve(ROOT, env.DEV_DIR || ".wrangler");
  let config = opts.config ?? env.BACKUP_CONFIG;
  if (!config) {
    const devConfig = path.join(devDir, "dev", "wrangler.json");
    config = target === "local" && fs.existsSync(devConfig) ? devConfig : path.join(ROOT, "wrangler.toml");
  }
  config = path.resolve(config);
  if (!fs.existsSync(config)) fail(`the wrangler configuration ${config} does not exist`);
  const persistTo = path.resolve(opts["persist-to"] ?? env.BACKUP_PERSIST_TO ?? path.join(devDir, "state"));
  const explicitKey = opts["key-file"] ?? env.BACKUP_KEY_FILE;
  const configHome = env.XDG_CONFIG_HOME || path.join(os.homedir(), ".config");
  const keyFile = path.resolve(explicitKey || path.join(configHome, "recurring-edge", "backup.key"));
  const only = opts.only;
  if (only !== undefined && only !== "ledger" && only !== "vault") {
    fail(`--only must be ledger or vault, not '${only}'`);
  }
  return {
    target,
    config,
    persistTo,
    keyFile,
    keyGiven: Boolean(explicitKey),
    dir: path.resolve(opts.dir ?? env.BACKUP_DIR ?? path.join(ROOT, "backups")),
    only,
  };
}

// The ledger's shard count, LEDGER_SHARDS of the target's vars (default 1), read by wrangler's
// own reader (TOML or JSON, as wrangler reads it). A backup holds every database of the ledger,
// and a restore goes only into a ledger of as many.
async function ledgerShards(s) {
  let config;
  try {
    const { experimental_readRawConfig: readConfig } = await import("wrangler");
    config = readConfig({ config: s.config }).rawConfig;
  } catch (e) {
    fail(`cannot read the wrangler configuration ${s.config}: ${e.message}`);
  }
  const vars = (s.target === "production" ? config.env?.production?.vars : config.vars) ?? {};
  const value = String(vars.LEDGER_SHARDS ?? "1").trim();
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) fail(`LEDGER_SHARDS '${value}' is not a shard count`);
  return Number(value);
}

// --- the key ---------------------------------------------------------------------------------

function keyId(key) {
  return crypto.createHmac("sha256", key).update("recurring-edge backup key id").digest("hex").slice(0, 16);
}

function readKey(file) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8").trim();
  } catch (e) {
    fail(`cannot read the backup key ${file}: ${e.code ?? e.message}`);
  }
  const key = Buffer.from(text, "base64");
  if (key.length !== 32 || key.toString("base64") !== text) {
    fail(`the backup key ${file} is not 32 bytes in base64 (make one: openssl rand -base64 32)`);
  }
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077) {
    say(`warning: the backup key ${file} can be read by other users (mode ${mode.toString(8)}); chmod 600 it`);
  }
  return key;
}

// The key for `backup`: the one given, or the default one, created on first use.
function backupKey(s) {
  if (fs.existsSync(s.keyFile) || s.keyGiven) return readKey(s.keyFile);
  const key = crypto.randomBytes(32);
  fs.mkdirSync(path.dirname(s.keyFile), { recursive: true, mode: 0o700 });
  fs.writeFileSync(s.keyFile, `${key.toString("base64")}\n`, { mode: 0o600, flag: "wx" });
  say(`backup: created a new backup key: ${s.keyFile} (key id ${keyId(key)})
backup: KEEP A COPY OF IT SAFE AND APART FROM THE BACKUPS (a password manager, a secret store).
backup: Without it no backup can be restored; with it, whoever holds a backup can read the
backup: card tokens in it.`);
  return key;
}

// --- wrangler --------------------------------------------------------------------------------

let scratch; // the private temporary directory of this run

function privateDir() {
  if (!scratch) {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "recurring-edge-backup-"));
    fs.chmodSync(scratch, 0o700);
    // wrangler appends everything it prints (a bulk read's values included) to a debug log
    // file; here that file is /dev/null.
    fs.symlinkSync("/dev/null", path.join(scratch, "wrangler.log"));
    // What wrangler and the local runtime leave in a temporary directory goes with this one.
    fs.mkdirSync(path.join(scratch, "tmp"), { mode: 0o700 });
  }
  return scratch;
}

function cleanUp() {
  if (scratch) {
    fs.rmSync(scratch, { recursive: true, force: true });
    scratch = undefined;
  }
}

function wranglerBin() {
  const bin = path.join(ROOT, "node_modules", ".bin", "wrangler");
  if (!fs.existsSync(bin)) fail("wrangler is not installed: run scripts/bootstrap.sh (or make build) first");
  return bin;
}

// Runs wrangler; resolves with its stdout. `secret`: its input or output holds vault values,
// so its stdout is never shown and any line of its stderr naming a record is left out.
function wrangler(args, { input, secret = false, what }) {
  return new Promise((resolve, reject) => {
    // Input goes through `cat |`: a pipe, which wrangler can open as /dev/stdin (what Node
    // gives a child is a socket, which it cannot).
    const [command, argv] =
      input === undefined ? [wranglerBin(), args] : ["sh", ["-c", 'cat | exec "$0" "$@"', wranglerBin(), ...args]];
    const child = spawn(command, argv, {
      cwd: ROOT,
      env: {
        ...process.env,
        WRANGLER_LOG_PATH: path.join(privateDir(), "wrangler.log"),
        TMPDIR: path.join(privateDir(), "tmp"),
        WRANGLER_SEND_METRICS: "false",
        NO_COLOR: "1",
        FORCE_COLOR: "0",
      },
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    const out = [];
    const err = [];
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => err.push(d));
    child.on("error", (e) => reject(new Failure(`${what}: cannot run wrangler: ${e.message}`)));
    child.on("close", (code) => {
      const stdout = Buffer.concat(out).toString("utf8");
      if (code === 0) return resolve(stdout);
      let shown = stripVTControlCharacters(Buffer.concat(err).toString("utf8"));
      if (secret) {
        shown = shown
          .split("\n")
          .filter((l) => !/tokenId|"value"|\bvalue:/.test(l))
          .join("\n");
      } else {
        shown = `${stripVTControlCharacters(stdout)}\n${shown}`;
      }
      reject(new Failure(`${what}: wrangler exited with ${code}:\n${shown.trim()}`));
    });
    if (input !== undefined) {
      child.stdin.on("error", () => {}); // an early exit is reported by "close"
      child.stdin.end(input);
    }
  });
}

// The flags that point a command at the target: local state or the production account.
function where(s, { persist = true } = {}) {
  if (s.target === "production") return ["--remote", "--env", "production", "--config", s.config];
  return ["--local", "--config", s.config, ...(persist ? ["--persist-to", s.persistTo] : [])];
}

function jsonFrom(stdout, open, close, what) {
  const lines = stdout.split("\n");
  const first = lines.findIndex((l) => l.startsWith(open));
  let last = -1;
  lines.forEach((l, i) => {
    if (i >= first && l.trimEnd().endsWith(close)) last = i;
  });
  if (first < 0 || last < first) fail(`${what}: wrangler's answer is not the JSON expected`);
  try {
    return JSON.parse(lines.slice(first, last + 1).join("\n"));
  } catch {
    return fail(`${what}: wrangler's answer is not the JSON expected`);
  }
}

// The ledger's databases: `DB`, then `DB_1` … `DB_{N-1}`.
const ledgerBindings = (shards) => Array.from({ length: shards }, (_, k) => (k === 0 ? "DB" : `DB_${k}`));

async function query(s, sql, what, binding = "DB") {
  const stdout = await wrangler(["d1", "execute", binding, ...where(s), "--json", "--yes", "--command", sql], { what });
  const result = jsonFrom(stdout, "[", "]", what);
  if (!Array.isArray(result) || !result.every((r) => r.success !== false && Array.isArray(r.results))) {
    fail(`${what}: unexpected answer from D1`);
  }
  return result.flatMap((r) => r.results);
}

const quoteId = (name) => `"${name.replaceAll('"', '""')}"`;
const quoteText = (text) => `'${text.replaceAll("'", "''")}'`;
const internal = (name) => name.startsWith("sqlite_") || name.startsWith("_cf_");

// The ledger's schema objects (D1's own left out).
async function ledgerObjects(s, binding = "DB") {
  const rows = await query(
    s,
    "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger', 'view') ORDER BY type, name",
    `reading the ledger's schema (${binding})`,
    binding,
  );
  return rows.filter((r) => !internal(r.name));
}

async function rowCounts(s, tables, binding = "DB") {
  if (tables.length === 0) return {};
  // One statement a table (D1 allows few terms in a compound SELECT).
  const sql = tables.map((t) => `SELECT ${quoteText(t)} AS name, COUNT(*) AS n FROM ${quoteId(t)};`).join("\n");
  const rows = await query(s, sql, `counting the ledger's rows (${binding})`, binding);
  return Object.fromEntries(rows.map((r) => [r.name, r.n]));
}

async function vaultKeys(s) {
  const stdout = await wrangler(["kv", "key", "list", "--binding", "TOKENS", ...where(s)], {
    what: "listing the vault's keys",
  });
  const keys = jsonFrom(stdout, "[", "]", "listing the vault's keys");
  if (!Array.isArray(keys)) fail("listing the vault's keys: unexpected answer");
  return keys;
}

// --- the ledger's SQL ------------------------------------------------------------------------

// Splits SQL text into statements: quotes, comments, and a trigger's BEGIN ... END (CASE ...
// END inside it) kept whole. Each: { sql, words } (its first three words, upper case).
function splitStatements(text) {
  const out = [];
  const n = text.length;
  let start = 0;
  let words = [];
  let trigger = false;
  let depth = 0;
  let i = 0;
  const push = (end) => {
    const sql = text.slice(start, end).trim();
    if (words.length > 0) out.push({ sql: sql.endsWith(";") ? sql : `${sql};`, words });
    start = end;
    words = [];
    trigger = false;
    depth = 0;
  };
  while (i < n) {
    const c = text[i];
    if (c === "'" || c === '"' || c === "`") {
      let j = i + 1;
      for (;;) {
        if (j >= n) fail("the ledger export has an unterminated quote");
        if (text[j] === c) {
          if (text[j + 1] === c) {
            j += 2;
            continue;
          }
          break;
        }
        j++;
      }
      i = j + 1;
    } else if (c === "[") {
      const j = text.indexOf("]", i);
      if (j < 0) fail("the ledger export has an unterminated [identifier]");
      i = j + 1;
    } else if (c === "-" && text[i + 1] === "-") {
      const j = text.indexOf("\n", i);
      i = j < 0 ? n : j + 1;
    } else if (c === "/" && text[i + 1] === "*") {
      const j = text.indexOf("*/", i + 2);
      if (j < 0) fail("the ledger export has an unterminated comment");
      i = j + 2;
    } else if (/[A-Za-z0-9_$]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$]/.test(text[j])) j++;
      const word = text.slice(i, j).toUpperCase();
      if (words.length < 3) {
        words.push(word);
        trigger = words[0] === "CREATE" && words.slice(1).some((w) => w === "TRIGGER");
      } else if (trigger) {
        if (word === "BEGIN" || word === "CASE") depth++;
        else if (word === "END") depth--;
      }
      i = j;
    } else if (c === ";" && depth <= 0) {
      push(i + 1);
      i++;
    } else {
      i++;
    }
  }
  push(n);
  return out;
}

function unquote(name) {
  if (name.startsWith('"')) return name.slice(1, -1).replaceAll('""', '"');
  if (name.startsWith("`")) return name.slice(1, -1).replaceAll("``", "`");
  if (name.startsWith("[")) return name.slice(1, -1);
  return name;
}

const NAME = String.raw`("(?:[^"]|"")*"|\x60(?:[^\x60]|\x60\x60)*\x60|\[[^\]]*\]|[^\s(;]+)`;
const CREATE_TABLE = new RegExp(String.raw`^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?${NAME}`, "i");
const INSERT_INTO = new RegExp(String.raw`^INSERT\s+INTO\s+${NAME}`, "i");

// The export's statements by kind, in the order a restore runs them: every table first, then
// the rows, then indexes, views and triggers. Triggers come last so that the rows restored
// fire none of them (each would write an event the ledger already has).
function planLedger(sql) {
  const plan = { pragma: [], tables: [], rows: [], sequence: [], indexes: [], views: [], triggers: [], analyze: [] };
  const counts = {};
  for (const statement of splitStatements(sql)) {
    const [a, b, c] = statement.words;
    if (a === "PRAGMA") {
      plan.pragma.push(statement.sql);
    } else if (a === "CREATE" && b === "TABLE") {
      const name = unquote(CREATE_TABLE.exec(statement.sql)?.[1] ?? fail("unreadable CREATE TABLE in the export"));
      if (!internal(name)) {
        plan.tables.push(statement.sql);
        counts[name] ??= 0;
      }
    } else if (a === "CREATE" && (b === "INDEX" || (b === "UNIQUE" && c === "INDEX"))) {
      plan.indexes.push(statement.sql);
    } else if (a === "CREATE" && (b === "VIEW" || c === "VIEW")) {
      plan.views.push(statement.sql);
    } else if (a === "CREATE" && (b === "TRIGGER" || c === "TRIGGER")) {
      plan.triggers.push(statement.sql);
    } else if (a === "DELETE" && b === "FROM" && c === "SQLITE_SEQUENCE") {
      plan.sequence.push(statement.sql);
    } else if (a === "INSERT") {
      const name = unquote(INSERT_INTO.exec(statement.sql)?.[1] ?? fail("unreadable INSERT in the export"));
      if (name === "sqlite_sequence") {
        plan.sequence.push(statement.sql);
      } else if (internal(name)) {
        fail(`the export writes D1's own table ${name}`);
      } else {
        plan.rows.push(statement.sql);
        counts[name] = (counts[name] ?? 0) + 1;
      }
    } else if (a === "ANALYZE") {
      plan.analyze.push(statement.sql);
    } else {
      fail(`the ledger export holds a statement this script does not know (${a} ${b ?? ""})`);
    }
  }
  if (!("d1_migrations" in counts)) fail("the ledger export has no d1_migrations table: is this the ledger?");
  return { plan, counts };
}

// The latest migration the export's d1_migrations names.
function latestMigration(sql) {
  let latest = null;
  const re = /^INSERT INTO "d1_migrations" VALUES\((\d+),'((?:[^']|'')*)'/gm;
  for (const m of sql.matchAll(re)) {
    const id = Number(m[1]);
    if (!latest || id > latest.id) latest = { id, name: m[2].replaceAll("''", "'") };
  }
  return latest?.name ?? null;
}

// --- backup ----------------------------------------------------------------------------------

async function exportLedger(s, binding = "DB") {
  const dir = privateDir();
  const output = path.join(dir, `ledger-${binding}.sql`);
  const args = ["d1", "export", binding, "--output", output];
  if (s.target === "production") {
    args.push("--remote", "--env", "production", "--config", s.config, "--skip-confirmation");
  } else {
    // `d1 export --local` reads the state next to its configuration (.wrangler/state), with no
    // --persist-to: a copy of the configuration here, beside a link to the state.
    const configDir = path.join(dir, `config-${binding}`);
    fs.mkdirSync(path.join(configDir, ".wrangler"), { recursive: true, mode: 0o700 });
    fs.symlinkSync(s.persistTo, path.join(configDir, ".wrangler", "state"));
    const config = path.join(configDir, path.basename(s.config));
    fs.copyFileSync(s.config, config);
    args.push("--local", "--config", config);
  }
  try {
    await wrangler(args, { what: `exporting the ledger (${binding})` });
    return fs.readFileSync(output, "utf8");
  } finally {
    fs.rmSync(output, { force: true });
  }
}

async function readVault(s) {
  const keys = await vaultKeys(s);
  const records = [];
  for (let i = 0; i < keys.length; i += BULK_GET_KEYS) {
    const batch = keys.slice(i, i + BULK_GET_KEYS);
    const names = batch.map((k) => k.name);
    // The key names go in through a pipe, the values come back through one: no file.
    const stdout = await wrangler(["kv", "bulk", "get", "/dev/stdin", "--binding", "TOKENS", ...where(s)], {
      input: JSON.stringify(names),
      secret: true,
      what: "reading the vault",
    });
    const values = jsonFrom(stdout, "{", "}", "reading the vault");
    for (const k of batch) {
      let value = values[k.name];
      if (value !== null && typeof value === "object" && "value" in value) value = value.value;
      if (value !== null && typeof value === "object") value = JSON.stringify(value);
      if (typeof value !== "string") fail(`reading the vault: no value came back for ${k.name}`);
      const record = { key: k.name, value };
      if (k.metadata !== undefined) record.metadata = k.metadata;
      if (k.expiration !== undefined) record.expiration = k.expiration;
      records.push(record);
    }
  }
  return records;
}

// A path as the operator would type it: relative when under the current directory.
function shown(file) {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith("..") ? relative : file;
}

function timestamp(date) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

async function backup(s, shards) {
  if (s.target === "local" && !fs.existsSync(s.persistTo)) {
    fail(`there is no local state at ${shown(s.persistTo)} (make dev creates it)`);
  }
  const key = backupKey(s);
  const createdAt = new Date();
  // The ledger first, then the vault: every card the ledger names is in the vault read after.
  const databases = [];
  for (const binding of ledgerBindings(shards)) {
    say(`backup: exporting the ledger${shards > 1 ? `'s ${binding}` : ""} (${s.target})`);
    const sql = await exportLedger(s, binding);
    const { counts } = planLedger(sql); // also proves the export can be restored
    databases.push({ binding, sql, counts });
  }
  say("backup: reading the token vault");
  const records = await readVault(s);
  for (const r of records) {
    let token;
    try {
      token = JSON.parse(r.value)?.tokenId;
    } catch {
      token = undefined;
    }
    if (typeof token === "string" && token.length >= 8 && databases.some((d) => d.sql.includes(token))) {
      say(
        "backup: warning: the ledger export contains a card token, which the ledger must never hold;" +
          " the backup is encrypted, but the export passed through a temporary file",
      );
      break;
    }
  }
  const rowsOf = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);
  const rows = databases.reduce((total, d) => total + rowsOf(d.counts), 0);
  const [main, ...others] = databases;
  const header = {
    format: FORMAT,
    version: shards > 1 ? VERSION_SHARDED : VERSION_ONE_DATABASE,
    createdAt: createdAt.toISOString(),
    target: s.target,
    migration: latestMigration(main.sql),
    ledger: { tables: Object.keys(main.counts).length, rows },
    ...(shards > 1 ? { shards } : {}),
    vault: { keys: records.length },
    cipher: "AES-256-GCM",
    keyId: keyId(key),
    nonce: crypto.randomBytes(12).toString("base64"),
  };
  const headerLine = Buffer.from(`${JSON.stringify(header)}\n`, "utf8");
  const content = { ledger: { sql: main.sql, counts: main.counts }, vault: records };
  if (others.length > 0) content.shards = others;
  const payload = zlib.gzipSync(Buffer.from(JSON.stringify(content), "utf8"));
  const cipher = crypto.createCipheriv(CIPHER, key, Buffer.from(header.nonce, "base64"));
  cipher.setAAD(headerLine);
  const sealed = Buffer.concat([cipher.update(payload), cipher.final(), cipher.getAuthTag()]);

  fs.mkdirSync(s.dir, { recursive: true, mode: 0o700 });
  const base = path.join(s.dir, `recurring-edge-${timestamp(createdAt)}`);
  let file = `${base}.backup`;
  for (let n = 2; fs.existsSync(file); n++) file = `${base}-${n}.backup`;
  const partial = `${file}.partial`;
  const fd = fs.openSync(partial, "wx", 0o600);
  try {
    fs.writeSync(fd, headerLine);
    fs.writeSync(fd, sealed);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(partial, file);
  say(
    `backup: wrote ${shown(file)}: ${header.ledger.tables} tables, ${rows} rows` +
      (shards > 1 ? ` in ${shards} databases` : "") +
      ` (schema at ${header.migration}), ${records.length} vault keys, key id ${header.keyId}`,
  );
  process.stdout.write(`${file}\n`);
}

// --- restore ---------------------------------------------------------------------------------

// Reads, authenticates and decrypts a backup. Throws before anything else happens.
function openBackup(file, s) {
  let bytes;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    fail(`cannot read ${file}: ${e.code ?? e.message}`);
  }
  const newline = bytes.indexOf(0x0a);
  if (newline < 0 || newline > MAX_HEADER_BYTES) fail(`${file} is not a backup of this format (no header line)`);
  const headerLine = bytes.subarray(0, newline + 1);
  let header;
  try {
    header = JSON.parse(headerLine.toString("utf8"));
  } catch {
    fail(`${file}: the header is damaged or the file is not a backup; nothing was changed`);
  }
  if (header?.format !== FORMAT) fail(`${file} is not a ${FORMAT} file`);
  if (header.version !== VERSION_ONE_DATABASE && header.version !== VERSION_SHARDED) {
    fail(
      `${file} is a version ${header.version} backup; this script reads versions ${VERSION_ONE_DATABASE} and ${VERSION_SHARDED}`,
    );
  }
  if (!fs.existsSync(s.keyFile)) {
    fail(`no backup key at ${s.keyFile}: restore with the key the backup was made with (--key-file or BACKUP_KEY_FILE)`);
  }
  const key = readKey(s.keyFile);
  if (keyId(key) !== header.keyId) {
    fail(
      `${file} was made with another key (key id ${header.keyId}; ${s.keyFile} has key id ${keyId(key)}); nothing was changed`,
    );
  }
  const body = bytes.subarray(newline + 1);
  let nonce;
  try {
    nonce = Buffer.from(header.nonce, "base64");
  } catch {
    nonce = Buffer.alloc(0);
  }
  if (body.length < TAG_BYTES || nonce.length !== 12) fail(`${file} is damaged (truncated); nothing was changed`);
  let payload;
  try {
    const decipher = crypto.createDecipheriv(CIPHER, key, nonce);
    decipher.setAAD(headerLine);
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    payload = Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]);
  } catch {
    fail(`${file} does not authenticate: it was modified or damaged (or made with another key); nothing was changed`);
  }
  const content = JSON.parse(zlib.gunzipSync(payload).toString("utf8"));
  const databases = [{ binding: "DB", ...content.ledger }, ...(content.shards ?? [])];
  const records = content.vault;
  const expected = header.version === VERSION_SHARDED ? header.shards : 1;
  const bindings = ledgerBindings(databases.length);
  const wellFormed = databases.every(
    (d, k) => d.binding === bindings[k] && typeof d.sql === "string" && typeof d.counts === "object",
  );
  if (!wellFormed || databases.length !== expected || !Array.isArray(records)) {
    fail(`${file}: the payload is not what this script writes`);
  }
  return { header, databases, records };
}

async function restore(file, s, shards) {
  const { header, databases, records } = openBackup(file, s);
  for (const d of databases) {
    const { plan, counts: planned } = planLedger(d.sql);
    if (JSON.stringify(sortKeys(planned)) !== JSON.stringify(sortKeys(d.counts))) {
      fail(`${file}: the ledger's rows (${d.binding}) do not add up to what the backup recorded`);
    }
    d.plan = plan;
  }
  const doLedger = s.only !== "vault";
  const doVault = s.only !== "ledger";
  // A customer's records are in the database its reference hashes to among N: into another
  // count of databases they would not be found.
  if (doLedger && databases.length !== shards) {
    fail(
      `${file} holds a ledger of ${databases.length} database(s); the target's LEDGER_SHARDS is ${shards}:` +
        " restore into a ledger of as many; nothing was changed",
    );
  }
  say(
    `restore: ${path.basename(file)} of ${header.createdAt} (${header.target}): ${header.ledger.tables} tables,` +
      ` ${header.ledger.rows} rows${databases.length > 1 ? ` in ${databases.length} databases` : ""}` +
      ` (schema at ${header.migration}), ${header.vault.keys} vault keys -> ${s.target}` +
      (s.target === "local" ? ` (${s.persistTo})` : " ([env.production] of the configuration)"),
  );

  // Nothing is written unless every part to restore is empty.
  if (doLedger) {
    for (const d of databases) {
      d.objects = await ledgerObjects(s, d.binding);
      const tables = d.objects.filter((o) => o.type === "table").map((o) => o.name);
      const present = await rowCounts(s, tables, d.binding);
      const filled = Object.entries(present).filter(([name, n]) => n > 0 && name !== "d1_migrations");
      if (filled.length > 0) {
        fail(
          `the target ledger is not empty (${databases.length > 1 ? `${d.binding}: ` : ""}` +
            `${filled.map(([t, n]) => `${t}: ${n}`).join(", ")}); restore into a new,` +
            " empty database (see docs/operate/backups.md); nothing was changed",
        );
      }
    }
  }
  if (doVault) {
    const keys = await vaultKeys(s);
    if (keys.length > 0) {
      fail(
        `the target vault is not empty (${keys.length} keys); restore into a new, empty namespace` +
          " (see docs/operate/backups.md); nothing was changed",
      );
    }
  }

  if (doLedger) {
    for (const d of databases) await restoreDatabase(s, d, databases.length > 1);
  }
  if (doVault) {
    say(`restore: the token vault (${records.length} keys)`);
    if (records.length > 0) {
      // Through a pipe: the decrypted records never touch the disk.
      await wrangler(["kv", "bulk", "put", "/dev/stdin", "--binding", "TOKENS", ...where(s)], {
        input: JSON.stringify(records),
        secret: true,
        what: "restoring the vault",
      });
    }
    const keys = await vaultKeys(s);
    const names = new Set(keys.map((k) => k.name));
    const missing = records.filter((r) => !names.has(r.key)).length;
    if (missing > 0) fail(`the restored vault lacks ${missing} of the backup's ${records.length} keys`);
  }
  const tables = Object.keys(databases[0].counts).length;
  say(
    `restore: done. ${doLedger ? `Ledger: ${tables} tables, ${header.ledger.rows} rows, as backed up. ` : ""}` +
      `${doVault ? `Vault: ${records.length} keys. ` : ""}` +
      (s.target === "local"
        ? "Start the stack with make dev (it applies any migration newer than the backup's)."
        : "Deploy with make deploy (it applies any migration newer than the backup's)."),
  );
}

// One database of the ledger, empty (checked), from its export: the rows, then the indexes and
// triggers, and every table's count checked after.
async function restoreDatabase(s, { binding, plan, counts, objects }, named) {
  // An empty schema (migrations applied, no rows) goes: the backup brings its own, with the
  // d1_migrations that describe it.
  const drops = [
    ...objects.filter((o) => o.type === "view").map((o) => `DROP VIEW IF EXISTS ${quoteId(o.name)};`),
    ...objects.filter((o) => o.type === "trigger").map((o) => `DROP TRIGGER IF EXISTS ${quoteId(o.name)};`),
    ...objects.filter((o) => o.type === "table").map((o) => `DROP TABLE IF EXISTS ${quoteId(o.name)};`),
  ];
  const script = [
    "PRAGMA defer_foreign_keys=TRUE;",
    ...drops,
    ...plan.tables,
    ...plan.rows,
    ...plan.sequence,
    ...plan.indexes,
    ...plan.views,
    ...plan.triggers,
    ...plan.analyze,
  ].join("\n");
  const sqlFile = path.join(privateDir(), `restore-${binding}.sql`);
  fs.writeFileSync(sqlFile, `${script}\n`, { mode: 0o600 });
  const rows = Object.values(counts).reduce((a, b) => a + b, 0);
  say(`restore: the ledger${named ? `'s ${binding}` : ""} (${rows} rows, then indexes and triggers)`);
  try {
    await wrangler(["d1", "execute", binding, ...where(s), "--yes", "--file", sqlFile], {
      what: `restoring the ledger (${binding})`,
    });
  } finally {
    fs.rmSync(sqlFile, { force: true });
  }
  // Every table holds exactly the rows of the backup: no trigger fired, nothing is missing.
  const restored = await rowCounts(s, Object.keys(counts), binding);
  const wrong = Object.entries(counts).filter(([t, n]) => restored[t] !== n);
  if (wrong.length > 0) {
    fail(
      `the restored ledger (${binding}) does not match the backup (${wrong.map(([t, n]) => `${t}: ${restored[t]} rows, expected ${n}`).join(", ")})`,
    );
  }
  const schema = await ledgerObjects(s, binding);
  const expected = plan.tables.length + plan.indexes.length + plan.views.length + plan.triggers.length;
  if (schema.length !== expected) {
    fail(`the restored ledger (${binding}) has ${schema.length} schema objects, the backup ${expected}`);
  }
}

function sortKeys(object) {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

// --- main ------------------------------------------------------------------------------------

async function main() {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 20) fail(`Node 20 or newer is required (this is ${process.versions.node})`);
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help || !opts.command) {
    say(USAGE);
    return opts.help ? 0 : 2;
  }
  const s = settings(opts);
  if (opts.command === "backup") {
    if (opts.positional.length > 0) fail(`backup takes no file (${opts.positional[0]}); see --help`);
    await backup(s, await ledgerShards(s));
  } else if (opts.command === "restore") {
    if (opts.positional.length !== 1) fail("name the backup to restore: make restore BACKUP=backups/<file>.backup");
    await restore(path.resolve(opts.positional[0]), s, await ledgerShards(s));
  } else {
    fail(`unknown command '${opts.command}'\n${USAGE}`);
  }
  return 0;
}

// Whatever happens, the temporary directory goes (with any export still in it).
process.on("exit", cleanUp);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    cleanUp();
    process.exit(128 + os.constants.signals[signal]);
  });
}

main()
  .then((code) => {
    cleanUp();
    process.exitCode = code;
  })
  .catch((e) => {
    cleanUp();
    say(e instanceof Failure ? `${process.argv[2] ?? "backup"}: error: ${e.message}` : `error: ${e.stack ?? e}`);
    process.exitCode = 1;
  });
