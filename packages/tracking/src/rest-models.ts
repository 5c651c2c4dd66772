/**
 * The REST store's datasets and MLflow 3 logged models: `runs/log-inputs`, `runs/outputs`,
 * `logged-models` (create, finalize by PATCH, search) and the artifact upload both runs and
 * logged models use (`PUT /api/2.0/mlflow-artifacts/artifacts/<path>`, a server that proxies
 * artifacts). A server without the logged-model API (before MLflow 3) answers its create with 404
 * or ENDPOINT_NOT_FOUND: `create` then resolves undefined, with a debug line, and the caller skips
 * the model entity.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import * as v from "valibot";
import { BadParameterError, MissingArtifactError, walkFiles } from "@ms/contracts";
import { MlflowParameterError, type RestTransport } from "./rest-transport.js";
import type { ArtifactSource, LazyLogger, LoggedModels, NewLoggedModel } from "./store.js";
import type { DatasetInput, LoggedModel, LoggedModelStatus } from "./types.js";

const API = "/api/2.0/mlflow";

const STATUS: Record<string, LoggedModelStatus> = {
  LOGGED_MODEL_PENDING: "PENDING",
  LOGGED_MODEL_READY: "READY",
  LOGGED_MODEL_UPLOAD_FAILED: "FAILED",
};

const KeyValues = v.pipe(
  v.optional(v.array(v.object({ key: v.string(), value: v.optional(v.string(), "") })), []),
  v.transform((list) => Object.fromEntries(list.map((p) => [p.key, p.value]))),
);

const LoggedModelSchema = v.pipe(
  v.object({
    info: v.object({
      model_id: v.string(),
      experiment_id: v.pipe(v.union([v.string(), v.number()]), v.transform(String)),
      name: v.optional(v.string(), ""),
      artifact_uri: v.optional(v.string(), ""),
      status: v.optional(v.picklist(Object.keys(STATUS)), "LOGGED_MODEL_PENDING"),
      source_run_id: v.optional(v.string()),
      tags: KeyValues,
    }),
  }),
  v.transform(
    ({ info }): LoggedModel => ({
      modelId: info.model_id,
      experimentId: info.experiment_id,
      name: info.name,
      artifactUri: info.artifact_uri,
      status: STATUS[info.status],
      ...(info.source_run_id ? { sourceRunId: info.source_run_id } : {}),
      tags: info.tags,
    }),
  ),
);

const Answers = {
  model: v.object({ model: LoggedModelSchema }),
  search: v.object({ models: v.optional(v.array(LoggedModelSchema), []), next_page_token: v.optional(v.string()) }),
  empty: v.object({}),
};

/** The path of an `mlflow-artifacts:` URI on the server's artifact API; another scheme cannot be uploaded to. */
export function artifactApiPath(uri: string, what: string): string {
  const m = /^mlflow-artifacts:(?:\/\/[^/]*)?\/?(.*)$/.exec(uri);
  if (!m) {
    throw new BadParameterError(
      "artifacts",
      `${what} stores artifacts at ${uri}; only servers that proxy artifacts (mlflow server --serve-artifacts, the default) are supported for upload`,
    );
  }
  return m[1].replace(/\/+$/, "");
}

/** Uploads a file, or a directory's files, under `base/sub` of the server's artifact API. */
export async function uploadArtifacts(http: RestTransport, base: string, source: ArtifactSource, sub: string): Promise<void> {
  const files: Array<[string, string]> = source.isDirectory
    ? (await walkFiles(source.path)).map((rel) => [path.join(source.path, ...rel.split("/")), rel])
    : [[source.path, path.basename(source.path)]];
  for (const [abs, rel] of files) {
    const target = [base, sub, rel].filter(Boolean).join("/");
    const encoded = target.split("/").map(encodeURIComponent).join("/");
    // The artifact upload is the one endpoint MLflow answers with an empty 200.
    await http.request("PUT", `/api/2.0/mlflow-artifacts/artifacts/${encoded}`, undefined, { raw: await fs.readFile(abs) });
  }
}

export async function logInputs(http: RestTransport, runId: string, datasets: readonly DatasetInput[]): Promise<void> {
  const body = {
    run_id: runId,
    datasets: datasets.map((d) => ({
      tags: d.context ? [{ key: "mlflow.data.context", value: d.context }] : [],
      dataset: {
        name: d.name,
        digest: d.digest,
        source_type: d.sourceType,
        source: d.source,
        ...(d.schema ? { schema: d.schema } : {}),
        ...(d.profile ? { profile: d.profile } : {}),
      },
    })),
  };
  await http.request("POST", `${API}/runs/log-inputs`, Answers.empty, { body });
}

/** An answer that says the server has no such endpoint (an MLflow before 3). */
function noEndpoint(error: unknown): boolean {
  return error instanceof MissingArtifactError || (error instanceof MlflowParameterError && error.mlflowErrorCode === "ENDPOINT_NOT_FOUND");
}

export class RestLoggedModels implements LoggedModels {
  constructor(
    private readonly http: RestTransport,
    private readonly log: LazyLogger,
  ) {}

  async create(model: NewLoggedModel): Promise<LoggedModel | undefined> {
    const body = {
      experiment_id: model.experimentId,
      name: model.name,
      ...(model.sourceRunId ? { source_run_id: model.sourceRunId } : {}),
      ...(model.modelType ? { model_type: model.modelType } : {}),
      tags: model.tags.map(([key, value]) => ({ key, value })),
      params: model.params.map(([key, value]) => ({ key, value })),
    };
    try {
      return (await this.http.request("POST", `${API}/logged-models`, Answers.model, { body })).model;
    } catch (error) {
      if (!noEndpoint(error)) throw error;
      this.log().debug(
        { trackingUri: this.http.uri, error: (error as Error).message },
        "the tracking server has no logged models (MLflow 3's LoggedModel): skipped",
      );
      return undefined;
    }
  }

  private async get(modelId: string): Promise<LoggedModel> {
    return (await this.http.request("GET", `${API}/logged-models/${encodeURIComponent(modelId)}`, Answers.model)).model;
  }

  async logArtifacts(modelId: string, source: ArtifactSource): Promise<void> {
    const model = await this.get(modelId);
    await uploadArtifacts(this.http, artifactApiPath(model.artifactUri, `logged model ${modelId}`), source, "");
  }

  async finalize(modelId: string, status: "READY" | "FAILED"): Promise<LoggedModel> {
    const body = { model_id: modelId, status: status === "READY" ? "LOGGED_MODEL_READY" : "LOGGED_MODEL_UPLOAD_FAILED" };
    return (await this.http.request("PATCH", `${API}/logged-models/${encodeURIComponent(modelId)}`, Answers.model, { body })).model;
  }

  async logOutputs(runId: string, models: ReadonlyArray<{ modelId: string; step: number }>): Promise<void> {
    const body = { run_id: runId, models: models.map((m) => ({ model_id: m.modelId, step: m.step })) };
    await this.http.request("POST", `${API}/runs/outputs`, Answers.empty, { body });
  }

  async search(experimentIds: readonly string[]): Promise<LoggedModel[]> {
    const out: LoggedModel[] = [];
    let pageToken: string | undefined;
    do {
      const body = { experiment_ids: experimentIds, max_results: 100, ...(pageToken ? { page_token: pageToken } : {}) };
      const r = await this.http.request("POST", `${API}/logged-models/search`, Answers.search, { body });
      out.push(...r.models);
      pageToken = r.next_page_token || undefined;
    } while (pageToken);
    return out;
  }
}
