/**
 * Safe zip extraction. Archives come from the network, so every entry is checked before a byte is
 * written: no absolute paths, no `..` segments, no links, nothing outside the target directory,
 * a cap on the total size so a zip bomb cannot fill the disk, and a cap on the number of entries
 * (100,000 tiny entries took 82 s to extract). An AbortSignal stops it between and within entries.
 */
import { createWriteStream, promises as fs } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";
import type yauzl from "yauzl";
import { CorruptArtifactError, InterruptedError, MsError, asStorageError } from "@ms/contracts";

/** ml-32m unpacks to under 1 GiB; 8 GiB leaves room and still stops a bomb. */
export const DEFAULT_MAX_EXTRACT_BYTES = 8 * 1024 ** 3;

/** MovieLens archives hold under 20 entries; 10,000 leaves room and still stops a flood. */
export const DEFAULT_MAX_ENTRIES = 10_000;

export interface ExtractOptions {
  maxBytes?: number;
  maxEntries?: number;
  signal?: AbortSignal;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

/** Why an entry name is unsafe, or undefined when it is fine. */
export function unsafeEntryReason(name: string): string | undefined {
  if (name.includes("\0")) return "contains a NUL byte";
  if (name.startsWith("/") || name.startsWith("\\") || /^[a-zA-Z]:/.test(name)) return "is an absolute path";
  const parts = name.split(/[\\/]/);
  if (parts.includes("..")) return "has a '..' segment";
  return undefined;
}

/** What one extraction needs to know to check and write an entry. */
interface Extraction {
  archive: string;
  root: string;
  maxBytes: number;
  signal: AbortSignal | undefined;
  interrupted: () => Error;
}

export async function extractZip(archive: string, target: string, options: ExtractOptions = {}): Promise<string[]> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_EXTRACT_BYTES;
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const interrupted = () =>
    options.signal?.reason instanceof MsError ? options.signal.reason : new InterruptedError(`${archive}: extraction interrupted`);
  const x: Extraction = { archive, root: path.resolve(target), maxBytes, signal: options.signal, interrupted };
  let zip: yauzl.ZipFile;
  try {
    // decodeStrings:false: yauzl's own name check throws opaque errors; ours names the entry.
    // Loaded here, not at import: only a download unpacks a zip, and yauzl with zlib costs ~25 ms at start.
    const { default: zipLib } = await import("yauzl");
    zip = await zipLib.openPromise(archive, { lazyEntries: true, validateEntrySizes: true, decodeStrings: false });
  } catch (error) {
    throw new CorruptArtifactError(`${archive}: not a readable zip archive (${(error as Error).message})`, { cause: error });
  }
  const written: string[] = [];
  let total = 0;
  let entries = 0;
  try {
    // The central directory states the count up front; the loop counts too, in case it lies.
    if (zip.entryCount > maxEntries)
      throw new CorruptArtifactError(
        `${archive}: holds ${zip.entryCount} entries, more than the limit of ${maxEntries}; refusing to extract`,
      );
    for (;;) {
      if (options.signal?.aborted) throw interrupted();
      const entry = await nextEntry(zip);
      if (!entry) break;
      if (++entries > maxEntries) throw new CorruptArtifactError(`${archive}: more than ${maxEntries} entries; refusing to extract`);
      const { name, dest } = checkedEntry(x, entry);
      if (name.endsWith("/")) {
        await fs.mkdir(dest, { recursive: true });
        continue;
      }
      total += entry.uncompressedSize;
      if (total > maxBytes) throw new CorruptArtifactError(`${archive}: unpacks to more than ${maxBytes} bytes; refusing to extract`);
      await writeEntry(x, zip, entry, name, dest, total - entry.uncompressedSize);
      written.push(name);
    }
  } catch (error) {
    if (error instanceof MsError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code && /^E[A-Z]+$/.test(code)) throw asStorageError(error, x.root);
    throw new CorruptArtifactError(`${archive}: damaged zip archive (${(error as Error).message})`, { cause: error });
  } finally {
    zip.close();
  }
  return written;
}

/** The next entry of a lazily read zip, or null at its end. */
function nextEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | null> {
  return new Promise<yauzl.Entry | null>((resolve, reject) => {
    const onEntry = (e: yauzl.Entry) => {
      zip.off("end", onEnd);
      zip.off("error", onError);
      resolve(e);
    };
    const onEnd = () => {
      zip.off("entry", onEntry);
      zip.off("error", onError);
      resolve(null);
    };
    const onError = (err: Error) => {
      zip.off("entry", onEntry);
      zip.off("end", onEnd);
      reject(err);
    };
    zip.once("entry", onEntry);
    zip.once("end", onEnd);
    zip.once("error", onError);
    zip.readEntry();
  });
}

/** An entry's name and where it goes, refused when the name is unsafe, a link, or leads outside the target. */
function checkedEntry(x: Extraction, entry: yauzl.Entry): { name: string; dest: string } {
  // yauzl's types say string; with decodeStrings off (raw names, checked below) it is a Buffer.
  const rawName: unknown = entry.fileName;
  const name = Buffer.isBuffer(rawName) ? rawName.toString("utf8") : String(rawName);
  const reason = unsafeEntryReason(name);
  if (reason) throw new CorruptArtifactError(`${x.archive}: entry ${JSON.stringify(name)} ${reason}; refusing to extract`);
  const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
  if (mode === S_IFLNK)
    throw new CorruptArtifactError(`${x.archive}: entry ${JSON.stringify(name)} is a symbolic link; refusing to extract`);
  const dest = path.resolve(x.root, name);
  if (dest !== x.root && !dest.startsWith(x.root + path.sep)) {
    throw new CorruptArtifactError(`${x.archive}: entry ${JSON.stringify(name)} escapes the target directory`);
  }
  return { name, dest };
}

/** Writes one file entry to `dest`, counting the bytes that come out against the cap (`before`: the entries already written). */
async function writeEntry(
  x: Extraction,
  zip: yauzl.ZipFile,
  entry: yauzl.Entry,
  name: string,
  dest: string,
  before: number,
): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true });
  const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
    zip.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s!))),
  );
  let seen = 0;
  // Sizes in the header can lie; count what actually comes out too.
  const guard = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (before + seen > x.maxBytes) done(new CorruptArtifactError(`${x.archive}: unpacks to more than ${x.maxBytes} bytes`));
      else done(null, chunk);
    },
  });
  try {
    await pipeline(stream, guard, createWriteStream(dest, { flags: "wx" }), ...(x.signal ? [{ signal: x.signal }] : []));
  } catch (error) {
    if (error instanceof MsError) throw error;
    if (x.signal?.aborted) throw x.interrupted();
    const code = (error as NodeJS.ErrnoException).code;
    if (code && /^E[A-Z]+$/.test(code) && code !== "EEXIST") throw asStorageError(error, dest);
    throw new CorruptArtifactError(`${x.archive}: entry ${JSON.stringify(name)} is damaged (${(error as Error).message})`, {
      cause: error,
    });
  }
}
