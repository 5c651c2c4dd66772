/**
 * Test-only preload (`node --import`) that makes the cache directory of an `ms` child process
 * unwritable from outside the code under test: `MS_TEST_FS_FAULT=<ERRNO>` fails every write
 * under `$MS_CACHE_DIR` with that errno (a read-only or full file system), and
 * `MS_TEST_FS_FAULT=<ERRNO>:publish` fails only the rename that publishes an entry into objects/.
 * Reads are left alone. It patches node:fs, so production code carries no fault hook.
 */
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import path from "node:path";

const [errno, op = "all"] = (process.env.MS_TEST_FS_FAULT ?? "").split(":");
const root = path.resolve(process.env.MS_CACHE_DIR ?? ".");
const objects = path.join(root, "objects");

const inside = (dir, p) => {
  if (typeof p !== "string" && !(p instanceof URL) && !Buffer.isBuffer(p)) return false;
  const abs = path.resolve(p instanceof URL ? p.pathname : String(p));
  return abs === dir || abs.startsWith(dir + path.sep);
};
const fault = (syscall, p) =>
  Object.assign(new Error(`${errno}: injected by the test, ${syscall} '${String(p)}'`), { code: errno, syscall, path: String(p) });
const writes = (flags) =>
  typeof flags === "number"
    ? (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT)) !== 0
    : typeof flags === "string" && /[wa+]/.test(flags);

/** Which calls fail: `targets(args)` lists the paths a call writes. */
const rules =
  op === "publish"
    ? { rename: (args) => [args[1]].filter((p) => inside(objects, p)) }
    : {
        mkdir: (args) => [args[0]].filter((p) => !fs.existsSync(p)),
        open: (args) => (writes(args[1]) ? [args[0]] : []),
        writeFile: (args) => [args[0]],
        appendFile: (args) => [args[0]],
        rename: (args) => [args[0], args[1]],
        unlink: (args) => [args[0]],
        rm: (args) => [args[0]].filter((p) => fs.existsSync(p)),
        rmdir: (args) => [args[0]],
        utimes: (args) => [args[0]],
        link: (args) => [args[1]],
        symlink: (args) => [args[1]],
        copyFile: (args) => [args[1]],
      };

function blocked(name, args) {
  const rule = rules[name];
  return rule ? rule(args).find((p) => inside(root, p)) : undefined;
}

if (errno) {
  for (const name of Object.keys(rules)) {
    const promised = fs.promises[name];
    fs.promises[name] = function (...args) {
      const p = blocked(name, args);
      return p === undefined ? promised.apply(this, args) : Promise.reject(fault(name, p));
    };
    const sync = fs[`${name}Sync`];
    fs[`${name}Sync`] = function (...args) {
      const p = blocked(name, args);
      if (p !== undefined) throw fault(name, p);
      return sync.apply(this, args);
    };
    const callback = fs[name];
    fs[name] = function (...args) {
      const p = blocked(name, args);
      if (p === undefined) return callback.apply(this, args);
      const done = args.findLast((a) => typeof a === "function");
      process.nextTick(() => done?.(fault(name, p)));
    };
  }
  syncBuiltinESMExports();
}
