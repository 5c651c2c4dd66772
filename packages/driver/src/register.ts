/**
 * `ms run --register-model NAME [--alias ALIAS]`: the run's final model (the MLflow Model the
 * pipeline logged at artifact path `model` of the step run that produced it, mlflow-model.ts) becomes a new version of a
 * registered model in the tracking server's registry, waited for until READY, and the alias is
 * pointed at it. Everything that can be known before the run computes is checked first
 * (`prepareRegistration`): the names, that the store has a registry at all (a file store has
 * none: exit 7), and that the server answers.
 */
import { BadParameterError, MissingArtifactError, type Logger } from "@ms/contracts";
import {
  createTracker,
  openRegistry,
  TAGS,
  validateAlias,
  validateModelName,
  type ModelRegistry,
  type ModelVersionStatus,
} from "@ms/tracking";
import { MODEL_ARTIFACT_PATH, MODEL_TAGS, type LoggedFinalModel } from "./mlflow-model.js";

export interface RegisteredModelReport {
  /** The registered model. */
  name: string;
  version: number;
  /** The alias now pointing at this version, when one was asked for. */
  alias?: string;
  status: ModelVersionStatus;
  /** `models:/NAME@ALIAS` when aliased, else `models:/NAME/VERSION`. */
  modelUri: string;
  /** The step run whose model this version is. */
  runId: string;
  /** Where the registry says the version's files are (`<run artifact URI>/model`). */
  source: string;
}

export interface RegistrationOptions {
  name: string;
  alias?: string;
  trackingUri?: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  /** How long a version may stay PENDING_REGISTRATION (default 300 s, as MLflow's client). */
  readyTimeoutMs?: number;
}

/** A registration checked before the run: call `register` with the model the run logged once it has finished. */
export interface Registration {
  /** Registers `model`, the run's final model as the pipeline logged it (`PipelineReport.model`). */
  register(model: LoggedFinalModel | undefined, signal?: AbortSignal): Promise<RegisteredModelReport>;
}

/**
 * Checks everything a registration needs before the run computes: valid names, a tracking store
 * with a registry (a file store: exit 7), and a server that answers (one registry request).
 */
export async function prepareRegistration(o: RegistrationOptions): Promise<Registration> {
  const name = validateModelName(o.name);
  const alias = o.alias === undefined ? undefined : validateAlias(o.alias);
  const registry = openRegistry(o.trackingUri, { logger: o.logger, env: o.env });
  await registry.getRegisteredModel(name);
  return {
    register: (model, signal) => register({ ...o, name, alias }, registry, model, signal),
  };
}

/** The version's tags: which step and cache entry made it, and the model kind. */
function versionTags(runTags: Record<string, string>, model: LoggedFinalModel): Record<string, string> {
  const tags: Record<string, string> = { [MODEL_TAGS.kind]: model.kind };
  for (const key of [TAGS.step, TAGS.cacheKey]) if (runTags[key]) tags[key] = runTags[key];
  return tags;
}

async function register(
  o: RegistrationOptions,
  registry: ModelRegistry,
  model: LoggedFinalModel | undefined,
  signal: AbortSignal | undefined,
): Promise<RegisteredModelReport> {
  if (!model)
    throw new MissingArtifactError(
      "the run logged no MLflow Model (it has no servable model), so --register-model has nothing to register",
    );
  const tracker = createTracker(o.trackingUri, { logger: o.logger, env: o.env });
  const run = await tracker.getRun(model.runId);
  // MLflow 3's way when the run logged a LoggedModel (register_model("models:/<model id>"): the version is
  // linked to it); else as register_model("runs:/<run>/model"): the run's model files. Both keep the run's id.
  const source = model.modelId ? `models:/${model.modelId}` : `${run.info.artifactUri.replace(/\/+$/, "")}/${MODEL_ARTIFACT_PATH}`;
  await registry.ensureRegisteredModel(o.name);
  const created = await registry.createModelVersion({
    name: o.name,
    source,
    runId: model.runId,
    ...(model.modelId ? { modelId: model.modelId } : {}),
    tags: versionTags(run.tags, model),
  });
  o.logger.info(
    { registeredModel: o.name, version: created.version, runId: model.runId },
    `registered version ${created.version} of model ${o.name}`,
  );
  const ready = await registry.waitUntilReady(o.name, created, { timeoutMs: o.readyTimeoutMs, signal });
  if (o.alias !== undefined) {
    await registry.setAlias(o.name, o.alias, ready.version);
    o.logger.info(
      { registeredModel: o.name, alias: o.alias, version: ready.version },
      `alias ${o.alias} of model ${o.name} -> version ${ready.version}`,
    );
  }
  return {
    name: o.name,
    version: ready.version,
    ...(o.alias !== undefined ? { alias: o.alias } : {}),
    status: ready.status,
    modelUri: o.alias !== undefined ? `models:/${o.name}@${o.alias}` : `models:/${o.name}/${ready.version}`,
    runId: model.runId,
    source,
  };
}

/** `--alias` means nothing without `--register-model`. */
export function checkRegistrationFlags(name: string | undefined, alias: string | undefined): void {
  if (alias !== undefined && name === undefined) throw new BadParameterError("--alias", "needs --register-model NAME");
}
