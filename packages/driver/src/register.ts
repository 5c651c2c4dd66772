/**
 * `ms run --register-model NAME [--alias ALIAS]`: the run's final model (the MLflow Model logged at
 * artifact path `model` of the step run that produced the keras model) becomes a new version of a
 * registered model in the tracking server's registry, waited for until READY, and the alias is
 * pointed at it. Everything that can be known before the run computes is checked first
 * (`prepareRegistration`): the names, that the store has a registry at all (a file store has
 * none: exit 7), and that the server answers.
 */
import { BadParameterError, MissingArtifactError, type Logger } from "@ms/contracts";
import { createTracker, openRegistry, validateAlias, validateModelName, type ModelRegistry, type ModelVersionStatus } from "@ms/tracking";
import type { StepReport } from "./step-run.js";

/** Where the MLflow Model of the final step run is logged, as MLflow's `log_model(..., "model")` puts it. */
export const MODEL_ARTIFACT_PATH = "model";
/** The artifact kind of the final model. */
const FINAL_MODEL_KIND = "keras-model";

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

/** A registration checked before the run: call `register` with the run's steps once it has finished. */
export interface Registration {
  register(steps: readonly StepReport[], signal?: AbortSignal): Promise<RegisteredModelReport>;
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
    register: (steps, signal) => register({ ...o, name, alias }, registry, steps, signal),
  };
}

/** The step run that produced the final model (the last one with a keras-model output). */
function finalModelRun(steps: readonly StepReport[]): StepReport {
  const step = steps.findLast((s) => Object.values(s.outputs).some((out) => out.kind === FINAL_MODEL_KIND));
  if (!step) throw new MissingArtifactError(`the run produced no ${FINAL_MODEL_KIND}, so there is no model to register`);
  return step;
}

async function register(
  o: RegistrationOptions,
  registry: ModelRegistry,
  steps: readonly StepReport[],
  signal: AbortSignal | undefined,
): Promise<RegisteredModelReport> {
  const step = finalModelRun(steps);
  const tracker = createTracker(o.trackingUri, { logger: o.logger, env: o.env });
  const run = await tracker.getRun(step.runId);
  const files = await tracker.listArtifacts(step.runId);
  if (!files.some((f) => f.path === `${MODEL_ARTIFACT_PATH}/MLmodel`))
    throw new MissingArtifactError(
      `run ${step.runId} (${step.step}) has no MLflow Model at artifact path ${MODEL_ARTIFACT_PATH} (no ${MODEL_ARTIFACT_PATH}/MLmodel among its artifacts), so --register-model has nothing to register`,
    );
  const source = `${run.info.artifactUri.replace(/\/+$/, "")}/${MODEL_ARTIFACT_PATH}`;
  await registry.ensureRegisteredModel(o.name);
  const created = await registry.createModelVersion({
    name: o.name,
    source,
    runId: step.runId,
    tags: { "ms.step": step.step, "ms.cache.key": step.key },
  });
  o.logger.info({ name: o.name, version: created.version, runId: step.runId }, `registered version ${created.version} of model ${o.name}`);
  const ready = await registry.waitUntilReady(o.name, created, { timeoutMs: o.readyTimeoutMs, signal });
  if (o.alias !== undefined) {
    await registry.setAlias(o.name, o.alias, ready.version);
    o.logger.info(
      { name: o.name, alias: o.alias, version: ready.version },
      `alias ${o.alias} of model ${o.name} -> version ${ready.version}`,
    );
  }
  return {
    name: o.name,
    version: ready.version,
    ...(o.alias !== undefined ? { alias: o.alias } : {}),
    status: ready.status,
    modelUri: o.alias !== undefined ? `models:/${o.name}@${o.alias}` : `models:/${o.name}/${ready.version}`,
    runId: step.runId,
    source,
  };
}

/** `--alias` means nothing without `--register-model`. */
export function checkRegistrationFlags(name: string | undefined, alias: string | undefined): void {
  if (alias !== undefined && name === undefined) throw new BadParameterError("--alias", "needs --register-model NAME");
}
