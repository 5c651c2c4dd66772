/**
 * The file store's datasets and run inputs, laid out as MLflow's FileStore writes them (its
 * `log_inputs`), so MLflow's UI and client list a run's datasets:
 *
 *   <experiment>/datasets/<md5(name + digest)>/meta.yaml            name, digest, source_type, source, schema, profile
 *   <experiment>/<run>/inputs/<md5(dataset id + run id)>/meta.yaml    source_type DATASET, source_id, destination_type RUN, tags
 *
 * (MLflow writes the input's `destination_id` as the dataset id too; kept as it does.) And an
 * experiment tag set only when absent (`ensureTagFile`), for `mlflow.experimentKind`.
 */
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { asStorageError } from "@ms/contracts";
import { isErrno, writeAtomic } from "./file-io.js";
import { formatMeta, formatScalar } from "./meta-yaml.js";
import type { DatasetInput } from "./types.js";

const md5 = (...parts: string[]) => {
  const h = createHash("md5");
  for (const p of parts) h.update(p, "utf8");
  return h.digest("hex");
};

/** Writes `<tagsDir>/<key>` unless it exists; true when written. */
export async function ensureTagFile(tagsDir: string, key: string, value: string): Promise<boolean> {
  const file = path.join(tagsDir, key);
  try {
    await fs.access(file);
    return false;
  } catch (error) {
    if (!isErrno(error, "ENOENT")) throw asStorageError(error, file);
  }
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await writeAtomic(file, value);
  } catch (error) {
    throw asStorageError(error, file);
  }
  return true;
}

/** A file written once: an existing one (another writer's, or an earlier call's) is kept, as MLflow does. */
async function writeOnce(dir: string, text: string): Promise<void> {
  try {
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, "meta.yaml"), text, { flag: "wx" });
  } catch (error) {
    if (!isErrno(error, "EEXIST")) throw asStorageError(error, dir);
  }
}

export async function writeRunInputs(
  experimentDir: string,
  runDir: string,
  runId: string,
  datasets: readonly DatasetInput[],
): Promise<void> {
  for (const d of datasets) {
    const datasetId = md5(d.name, d.digest);
    const meta = formatMeta({
      digest: d.digest,
      name: d.name,
      profile: d.profile ?? null,
      schema: d.schema ?? null,
      source: d.source,
      source_type: d.sourceType,
    });
    await writeOnce(path.join(experimentDir, "datasets", datasetId), meta);
    const tags = d.context ? `tags:\n  mlflow.data.context: ${formatScalar(d.context)}\n` : "tags: {}\n";
    const input = `${formatMeta({ destination_id: datasetId, destination_type: "RUN", source_id: datasetId, source_type: "DATASET" })}${tags}`;
    await writeOnce(path.join(runDir, "inputs", md5(datasetId, runId)), input);
  }
}
