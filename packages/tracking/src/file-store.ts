/**
 * The local store: MLflow's file-store layout under one root directory (default `./mlruns`), so
 * that MLflow itself (`MLFLOW_ALLOW_FILE_STORE=true`, `mlflow ui`, `mlflow migrate-filestore`)
 * reads what we write and we read what it writes.
 *
 *   <root>/<experimentId>/meta.yaml
 *   <root>/<experimentId>/<runId>/meta.yaml                   status as MLflow's integer enum
 *   <root>/<experimentId>/<runId>/metrics/<key>                lines "timestamp value step"
 *   <root>/<experimentId>/<runId>/params/<key>, tags/<key>     the raw value, no newline
 *   <root>/<experimentId>/<runId>/artifacts/...
 *
 * Several processes may write at once: meta.yaml and tags are replaced by rename (a reader sees
 * the old or the new file, never half of one), params are published with link() so that the
 * first value wins atomically, and metric lines are appended with one O_APPEND write per key and
 * batch. A run's meta.yaml is written last, so a crash while creating a run leaves a directory
 * that MLflow and we skip, never a run that cannot be read.
 */
import { randomBytes, randomUUID, createHash } from "node:crypto";
import { constants as fsConstants, promises as fs } from "node:fs";
import path from "node:path";
import { pathToFileURL, fileURLToPath } from "node:url";
import { asStorageError, BadParameterError, CorruptArtifactError, MissingArtifactError, silentLogger } from "@ms/contracts";
import { formatMetricLine, readMeta, readMetricFile, STATUS_CODES, toExperiment, toRunInfo, tryOrUndefined } from "./file-format.js";
import { ensureTagFile, writeRunInputs } from "./file-inputs.js";
import { copyIn, isErrno, keyClash, tmpName, walkRunFiles, writeAtomic } from "./file-io.js";
import { formatMeta, type Meta } from "./meta-yaml.js";
import type { ArtifactSource, Entries, LazyLogger, NewRun, RunQuery, Store } from "./store.js";
import { EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, TAGS } from "./tags.js";
import type { ArtifactEntry, DatasetInput, Experiment, Metric, Run, RunInfo, RunsPage, SkippedRun, TerminalStatus } from "./types.js";
import type { ValidMetric } from "./validation.js";
import { decodePageToken, encodePageToken, latestMetric, matchesSearch, newestFirst, defaultRunName } from "./common.js";

const TRASH = ".trash";
const RESERVED_EXPERIMENT_DIRS = new Set(["tags", "datasets", "traces"]);
const NOT_EXPERIMENTS = new Set([TRASH, "models", ".ms-tmp"]);

interface RunLocation {
  experimentId: string;
  dir: string;
}

export interface FileStoreOptions {
  /** Where warnings about unreadable runs go (default: nowhere). */
  logger?: LazyLogger;
}

export class FileStore implements Store {
  readonly kind = "file" as const;
  readonly uri: string;
  private ready: Promise<void> | undefined;
  private readonly runDirs = new Map<string, RunLocation>();
  private readonly log: LazyLogger;

  constructor(
    readonly root: string,
    options: FileStoreOptions = {},
  ) {
    this.uri = root;
    this.log = options.logger ?? silentLogger;
  }

  // ---- layout ---------------------------------------------------------------------------

  /**
   * Creates the root, `.trash` and the Default experiment on the first write, as MLflow does.
   * Reads of a missing root see an empty store instead, so `ms-runs ls --tracking-uri typo`
   * does not leave a directory behind.
   */
  private async init(create = true): Promise<void> {
    if (!create && !this.ready) {
      const exists = await fs.stat(this.root).then(
        () => true,
        () => false,
      );
      if (!exists) return;
    }
    this.ready ??= (async () => {
      try {
        const stat = await fs.stat(this.root).catch((e) => (isErrno(e, "ENOENT") ? undefined : Promise.reject(e)));
        if (stat && !stat.isDirectory()) throw new BadParameterError("tracking uri", `${this.root} exists and is not a directory`);
        await fs.mkdir(path.join(this.root, TRASH), { recursive: true });
        if (!(await readMeta(path.join(this.root, "0")))) {
          await this.writeExperiment("0", "Default").catch((e) => (isErrno(e, "EEXIST") ? undefined : Promise.reject(e)));
        }
      } catch (error) {
        this.ready = undefined;
        throw asStorageError(error, this.root);
      }
    })();
    return this.ready;
  }

  /** A search leaves out a run it cannot read (damaged or unreadable files), and says so (to `skipped`); a bug is rethrown. */
  private skipRun(dir: string, error: unknown, skipped: SkippedRun[]): undefined {
    if (!(error instanceof CorruptArtifactError) && typeof (error as NodeJS.ErrnoException | undefined)?.code !== "string") throw error;
    const message = (error as Error).message;
    this.log().warn({ trackingUri: this.uri, run: path.basename(dir), error: message }, `skipping unreadable run ${dir}: ${message}`);
    skipped.push({ runId: path.basename(dir), reason: message });
    return undefined;
  }

  private async writeExperiment(id: string, name: string): Promise<Experiment> {
    const dir = path.join(this.root, id);
    await fs.mkdir(dir); // EEXIST tells the caller another process holds this id
    // Tags first: once meta.yaml exists the experiment is complete for any reader.
    await this.writeFileIn(path.join(dir, "tags"), EXPERIMENT_KIND_TAG, EXPERIMENT_KIND);
    const now = Date.now();
    const meta: Meta = {
      artifact_location: pathToFileURL(dir).href,
      creation_time: now,
      experiment_id: id,
      last_update_time: now,
      lifecycle_stage: "active",
      name,
    };
    await writeAtomic(path.join(dir, "meta.yaml"), formatMeta(meta));
    return toExperiment(meta, dir);
  }

  private async experimentDirs(): Promise<Array<{ id: string; dir: string }>> {
    await this.init(false);
    const out: Array<{ id: string; dir: string }> = [];
    for (const parent of [this.root, path.join(this.root, TRASH)]) {
      const entries = await fs.readdir(parent, { withFileTypes: true }).catch(() => []);
      for (const e of entries)
        if (e.isDirectory() && !NOT_EXPERIMENTS.has(e.name)) out.push({ id: e.name, dir: path.join(parent, e.name) });
    }
    return out;
  }

  // ---- experiments ----------------------------------------------------------------------

  async listExperiments(): Promise<Experiment[]> {
    const out: Experiment[] = [];
    for (const { dir } of await this.experimentDirs()) {
      // An experiment whose meta.yaml cannot be read is left out of the list, as MLflow does.
      const meta = await readMeta(dir).catch(() => undefined);
      if (meta?.name === undefined || meta.experiment_id === undefined) continue;
      const experiment = tryOrUndefined(() => toExperiment(meta, dir));
      if (experiment) out.push(experiment);
    }
    return out
      .filter((e) => e.lifecycleStage === "active")
      .sort((a, b) => (b.creationTime ?? 0) - (a.creationTime ?? 0) || a.experimentId.localeCompare(b.experimentId));
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    await this.init(false);
    for (const parent of [this.root, path.join(this.root, TRASH)]) {
      const dir = path.join(parent, experimentId);
      const meta = await readMeta(dir);
      if (meta) return toExperiment(meta, dir);
    }
    throw new MissingArtifactError(`experiment ${experimentId} does not exist in ${this.root}`);
  }

  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    return (await this.listExperiments()).find((e) => e.name === name);
  }

  async createExperiment(name: string): Promise<Experiment> {
    await this.init();
    if (await this.getExperimentByName(name))
      throw new BadParameterError("experiment name", `an experiment named ${JSON.stringify(name)} already exists in ${this.root}`);
    for (;;) {
      // MLflow's ids are random positive 63-bit-ish integers; keep to 18 digits.
      const id = String(BigInt(`0x${randomBytes(8).toString("hex")}`) % 10n ** 18n);
      try {
        return await this.writeExperiment(id, name);
      } catch (error) {
        if (!isErrno(error, "EEXIST")) throw asStorageError(error, this.root);
      }
    }
  }

  async getOrCreateExperiment(name: string): Promise<Experiment> {
    await this.init();
    const existing = await this.getExperimentByName(name);
    if (existing) return existing;
    // An id derived from the name makes concurrent creators meet at the same directory: mkdir
    // picks one winner and the others read its meta.yaml instead of creating a duplicate.
    const id = String(BigInt(`0x${createHash("sha256").update(name).digest("hex").slice(0, 15)}`));
    try {
      return await this.writeExperiment(id, name);
    } catch (error) {
      if (!isErrno(error, "EEXIST")) throw asStorageError(error, this.root);
    }
    const dir = path.join(this.root, id);
    for (let i = 0; i < 50; i++) {
      const meta = await readMeta(dir);
      if (meta) {
        if (meta.name === name && meta.lifecycle_stage === "active") return toExperiment(meta, dir);
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.createExperiment(name);
  }

  async ensureExperimentTag(experimentId: string, key: string, value: string): Promise<boolean> {
    const experiment = await this.getExperiment(experimentId);
    return ensureTagFile(path.join(this.root, experiment.experimentId, "tags"), key, value);
  }

  // ---- runs -----------------------------------------------------------------------------

  async logInputs(runId: string, datasets: readonly DatasetInput[]): Promise<void> {
    const loc = await this.locate(runId);
    await writeRunInputs(path.join(this.root, loc.experimentId), loc.dir, runId, datasets);
  }

  private async locate(runId: string): Promise<RunLocation> {
    const cached = this.runDirs.get(runId);
    if (cached) return cached;
    for (const { id, dir } of await this.experimentDirs()) {
      const runDir = path.join(dir, runId);
      // A run that is there but damaged is said to be damaged (naming its file), not to be missing.
      const meta = await readMeta(runDir).catch((error: unknown) => {
        if (error instanceof CorruptArtifactError) throw error;
        return undefined;
      });
      if (meta) {
        const loc = { experimentId: id, dir: runDir };
        this.runDirs.set(runId, loc);
        return loc;
      }
    }
    throw new MissingArtifactError(`run ${runId} does not exist in ${this.root}`);
  }

  private async readRunMeta(loc: RunLocation): Promise<Meta> {
    const meta = await readMeta(loc.dir);
    if (!meta) throw new MissingArtifactError(`run directory ${loc.dir} has no meta.yaml`);
    return meta;
  }

  async startRun(run: NewRun): Promise<RunInfo> {
    const { experimentId, startTime, user } = run;
    await this.init();
    const experiment = await this.getExperiment(experimentId);
    if (experiment.lifecycleStage !== "active") throw new BadParameterError("experimentId", `experiment ${experimentId} is deleted`);
    if (run.parentRunId !== undefined) await this.locate(run.parentRunId);
    const runId = randomUUID().replace(/-/g, "");
    const runName = run.runName ?? defaultRunName(runId);
    const allTags = new Map(run.tags).set(TAGS.runName, runName);

    const expDir = path.join(this.root, experimentId);
    const dir = path.join(expDir, runId);
    try {
      await fs.mkdir(dir);
      // Each key is its own file: written side by side, so a run costs one round of file-system
      // calls rather than one per tag (that dominates a fully cached `ms run`).
      await Promise.all(["metrics", "params", "artifacts", "tags"].map((sub) => fs.mkdir(path.join(dir, sub))));
      await Promise.all([...allTags].map(([k, v]) => this.writeFileIn(path.join(dir, "tags"), k, v)));
      const meta: Meta = {
        artifact_uri: pathToFileURL(path.join(dir, "artifacts")).href,
        end_time: null,
        entry_point_name: "",
        experiment_id: experimentId,
        lifecycle_stage: "active",
        run_id: runId,
        run_name: runName,
        run_uuid: runId,
        source_name: "",
        source_type: 4,
        source_version: "",
        start_time: startTime,
        status: STATUS_CODES.RUNNING,
        tags: [],
        user_id: user,
      };
      // Last: until this rename the run does not exist for any reader.
      await writeAtomic(path.join(dir, "meta.yaml"), formatMeta(meta));
      this.runDirs.set(runId, { experimentId, dir });
      return toRunInfo(meta, dir);
    } catch (error) {
      await fs.rm(dir, { recursive: true, force: true });
      throw asStorageError(error, dir);
    }
  }

  async endRun(runId: string, status: TerminalStatus, endTime: number): Promise<RunInfo> {
    const loc = await this.locate(runId);
    const meta = await this.readRunMeta(loc);
    meta.status = STATUS_CODES[status];
    meta.end_time = endTime;
    await writeAtomic(path.join(loc.dir, "meta.yaml"), formatMeta(meta));
    return toRunInfo(meta, loc.dir);
  }

  /** Writes `<dir>/<key>` (key may contain `/`) by rename, turning a file/directory clash into a clear error. */
  private async writeFileIn(dir: string, key: string, value: string): Promise<void> {
    const file = path.join(dir, key);
    try {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await writeAtomic(file, value);
    } catch (error) {
      if (isErrno(error, "ENOTDIR", "EISDIR", "EEXIST")) throw keyClash(key, dir);
      throw asStorageError(error, file);
    }
  }

  async logParams(runId: string, entries: Entries): Promise<void> {
    const loc = await this.locate(runId);
    const dir = path.join(loc.dir, "params");
    // Check every key before writing any, so a rejected batch leaves the run as it was.
    await Promise.all(entries.map(([key, value]) => this.checkParam(dir, key, value, runId)));
    await Promise.all(entries.map(([key, value]) => this.writeParam(dir, key, value, runId)));
  }

  /** Written by hard link, which fails instead of replacing: the first value of a param wins. */
  private async writeParam(dir: string, key: string, value: string, runId: string): Promise<void> {
    const file = path.join(dir, key);
    try {
      await fs.mkdir(path.dirname(file), { recursive: true });
      const tmp = tmpName(path.dirname(file), path.basename(file));
      await fs.writeFile(tmp, value);
      try {
        await fs.link(tmp, file); // fails with EEXIST instead of replacing: the first value wins
      } catch (error) {
        if (!isErrno(error, "EEXIST")) throw error;
        await this.checkParam(dir, key, value, runId);
      } finally {
        // unlink, not rm: rm's recursive machinery costs an lstat and more per call, and a run writes dozens of params.
        await fs.unlink(tmp).catch(() => undefined);
      }
    } catch (error) {
      if (error instanceof BadParameterError) throw error;
      if (isErrno(error, "ENOTDIR", "EISDIR")) throw keyClash(key, dir);
      throw asStorageError(error, file);
    }
  }

  private async checkParam(dir: string, key: string, value: string, runId: string): Promise<void> {
    let current: string;
    try {
      current = await fs.readFile(path.join(dir, key), "utf8");
    } catch (error) {
      if (isErrno(error, "ENOENT")) return;
      if (isErrno(error, "ENOTDIR", "EISDIR")) throw keyClash(key, dir);
      throw error;
    }
    if (current !== value) {
      throw new BadParameterError(
        `param ${JSON.stringify(key)}`,
        `run ${runId} already logged it as ${JSON.stringify(current)}; params are immutable in MLflow, so ${JSON.stringify(value)} is refused`,
      );
    }
  }

  async logMetrics(runId: string, valid: readonly ValidMetric[]): Promise<void> {
    const loc = await this.locate(runId);
    const dir = path.join(loc.dir, "metrics");
    const byKey = new Map<string, string[]>();
    for (const m of valid) {
      const lines = byKey.get(m.key) ?? [];
      lines.push(formatMetricLine(m));
      byKey.set(m.key, lines);
    }
    await Promise.all(
      [...byKey].map(async ([key, lines]) => {
        const file = path.join(dir, key);
        try {
          await fs.mkdir(path.dirname(file), { recursive: true });
          // One write(2) on an O_APPEND descriptor: concurrent writers' lines never interleave.
          const handle = await fs.open(file, fsConstants.O_WRONLY | fsConstants.O_APPEND | fsConstants.O_CREAT, 0o644);
          try {
            const buf = Buffer.from(lines.join(""), "utf8");
            let off = 0;
            while (off < buf.length) off += (await handle.write(buf, off, buf.length - off)).bytesWritten;
          } finally {
            await handle.close();
          }
        } catch (error) {
          if (isErrno(error, "ENOTDIR", "EISDIR")) throw keyClash(key, dir);
          throw asStorageError(error, file);
        }
      }),
    );
  }

  async setTags(runId: string, entries: Entries): Promise<void> {
    const loc = await this.locate(runId);
    await Promise.all(entries.map(([k, v]) => this.writeFileIn(path.join(loc.dir, "tags"), k, v)));
    const name = entries.find(([k]) => k === TAGS.runName)?.[1];
    if (name !== undefined) {
      // As MLflow does: the run name lives in meta.yaml too.
      const meta = await this.readRunMeta(loc);
      meta.run_name = name;
      await writeAtomic(path.join(loc.dir, "meta.yaml"), formatMeta(meta));
    }
  }

  private async artifactRoot(loc: RunLocation): Promise<string> {
    const meta = await this.readRunMeta(loc);
    const uri = typeof meta.artifact_uri === "string" ? meta.artifact_uri : "";
    if (uri.startsWith("file:")) return fileURLToPath(uri);
    if (uri.startsWith("/")) return uri;
    if (uri === "") return path.join(loc.dir, "artifacts");
    throw new BadParameterError(
      "artifact uri",
      `run ${path.basename(loc.dir)} stores artifacts at ${uri}, which the file store cannot write`,
    );
  }

  async logArtifacts(runId: string, source: ArtifactSource, sub: string): Promise<void> {
    const loc = await this.locate(runId);
    const dest = path.join(await this.artifactRoot(loc), ...(sub ? sub.split("/") : []));
    await copyIn(source.path, dest, source.isDirectory);
  }

  async listArtifacts(runId: string): Promise<ArtifactEntry[]> {
    const loc = await this.locate(runId);
    const root = await this.artifactRoot(loc);
    const out: ArtifactEntry[] = [];
    for (const rel of await walkRunFiles(root)) {
      const st = await fs.stat(path.join(root, rel));
      out.push({ path: rel, isDir: false, fileSize: st.size });
    }
    return out.sort((a, b) => a.path.localeCompare(b.path));
  }

  async getRun(runId: string): Promise<Run> {
    const loc = await this.locate(runId);
    return this.readRun(loc, await this.readRunMeta(loc));
  }

  private async readKeyed(dir: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const rel of await walkRunFiles(dir)) out[rel] = await fs.readFile(path.join(dir, rel), "utf8");
    return out;
  }

  private async readRun(loc: RunLocation, meta: Meta): Promise<Run> {
    const info = toRunInfo(meta, loc.dir);
    const metricsDir = path.join(loc.dir, "metrics");
    const metrics: Record<string, Metric> = {};
    for (const key of await walkRunFiles(metricsDir)) {
      const latest = latestMetric(await readMetricFile(path.join(metricsDir, key), key));
      if (latest) metrics[key] = latest;
    }
    return {
      info,
      params: await this.readKeyed(path.join(loc.dir, "params")),
      metrics,
      tags: await this.readKeyed(path.join(loc.dir, "tags")),
    };
  }

  async getMetricHistory(runId: string, key: string): Promise<Metric[]> {
    const loc = await this.locate(runId);
    try {
      return await readMetricFile(path.join(loc.dir, "metrics", key), key);
    } catch (error) {
      if (isErrno(error, "ENOENT", "ENOTDIR", "EISDIR")) return [];
      throw error;
    }
  }

  /** A run directory's meta.yaml and what it says; undefined when it has none (a run being created). */
  private async readRunInfo(dir: string): Promise<{ meta: Meta; info: RunInfo } | undefined> {
    const meta = await readMeta(dir);
    return meta && { meta, info: toRunInfo(meta, dir) };
  }

  async searchRuns(query: RunQuery): Promise<RunsPage> {
    const max = query.maxResults;
    const offset = decodePageToken(query.pageToken);
    const candidates: Array<{ loc: RunLocation; meta: Meta; info: RunInfo }> = [];
    const skipped: SkippedRun[] = [];
    for (const experimentId of query.experimentIds) {
      const expDir = path.join(this.root, experimentId);
      const entries = await fs.readdir(expDir, { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        if (!e.isDirectory() || RESERVED_EXPERIMENT_DIRS.has(e.name)) continue;
        const loc = { experimentId, dir: path.join(expDir, e.name) };
        const found = await this.readRunInfo(loc.dir).catch((error: unknown) => this.skipRun(loc.dir, error, skipped));
        if (!found || found.info.lifecycleStage === "deleted") continue;
        if (query.status !== undefined && found.info.status !== query.status) continue;
        candidates.push({ loc, ...found });
      }
    }
    const matched: Run[] = [];
    for (const c of candidates) {
      const tags = await this.readKeyed(path.join(c.loc.dir, "tags"));
      const params = await this.readKeyed(path.join(c.loc.dir, "params"));
      if (!matchesSearch({ info: c.info, params, tags, metrics: {} }, query)) continue;
      // One damaged run (a metric line cut off by a crash) must not hide every other run.
      const run = await this.readRun(c.loc, c.meta).catch((error: unknown) => this.skipRun(c.loc.dir, error, skipped));
      if (run) matched.push(run);
    }
    matched.sort(newestFirst);
    const page = matched.slice(offset, offset + max);
    const more = offset + max < matched.length ? { nextPageToken: encodePageToken(offset + max) } : {};
    return { runs: page, ...more, ...(skipped.length ? { skipped } : {}) };
  }
}
