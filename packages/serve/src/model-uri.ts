/**
 * Model URIs as MLflow spells them, resolved to the ms run whose models answer: `runs:/RUN_ID/model`
 * names the run itself; `models:/NAME@ALIAS` and `models:/NAME/VERSION` ask the model registry of
 * the tracking server for the version and take the run that produced it (the version's `run_id`).
 * `resolveModelUri` makes a fresh registry client each call, so a long-lived server can re-resolve
 * an alias periodically without inheriting a spent retry budget.
 */
import { BadParameterError, type Logger } from "@ms/contracts";
import { openRegistry, type ModelRegistry, type ModelVersion } from "@ms/tracking";

/** A parsed model URI. */
export type ModelUri =
  | { scheme: "runs"; uri: string; runId: string }
  | { scheme: "models"; uri: string; name: string; alias: string }
  | { scheme: "models"; uri: string; name: string; version: number };

/** A model URI with the run it names. */
export interface ResolvedModelUri {
  uri: string;
  /** The run that produced the model (a step's child run: the ms run is its parent). */
  runId: string;
  /** For `models:/` URIs: the registered model, the version the URI resolved to, and the alias asked for. */
  name?: string;
  version?: number;
  alias?: string;
  /** Where the registry says the version's files are. */
  source?: string;
}

const FORMS = "models:/NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/model";
const RUN_ID = /^[a-zA-Z0-9][\w-]{0,255}$/;

/** Parses a model URI (MLflow's grammar for the forms ms serves); anything else is exit 2 naming the URI and the forms. */
export function parseModelUri(raw: string, flag = "--model-uri"): ModelUri {
  const uri = raw.trim();
  const bad = (why: string) => new BadParameterError(flag, `${JSON.stringify(raw)} ${why}; give ${FORMS}`);
  const m = /^([a-z]+):\/(?!\/)(.*)$/i.exec(uri);
  if (!m) throw bad("is not a model URI");
  const [, scheme, rest] = m;
  const parts = rest.split("/");
  if (scheme === "runs") {
    const [runId, ...path] = parts;
    if (!runId || !RUN_ID.test(runId)) throw bad("has no run id");
    const artifactPath = path.filter((p) => p !== "").join("/");
    if (artifactPath !== "model" && artifactPath !== "")
      throw bad(`names artifact path ${JSON.stringify(artifactPath)}; ms serves the run's model (artifact path model)`);
    return { scheme: "runs", uri, runId };
  }
  if (scheme !== "models") throw bad(`has scheme ${scheme}:`);
  if (parts.length === 2) {
    const [name, version] = parts;
    if (!name.trim()) throw bad("has no model name");
    if (!/^\d+$/.test(version) || Number(version) < 1)
      throw bad(`has ${JSON.stringify(version)} where a version number is expected (stages and 'latest' are not served)`);
    return { scheme: "models", uri, name, version: Number(version) };
  }
  if (parts.length === 1) {
    // As MLflow parses it: the last '@' separates the alias.
    const at = parts[0].lastIndexOf("@");
    if (at < 0) throw bad("has neither an alias (@ALIAS) nor a version (/VERSION)");
    const name = parts[0].slice(0, at);
    const alias = parts[0].slice(at + 1);
    if (!name.trim()) throw bad("has no model name");
    if (!alias.trim()) throw bad("has an empty alias");
    return { scheme: "models", uri, name, alias };
  }
  throw bad("has too many '/'");
}

export interface ResolveOptions {
  trackingUri?: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** The registry to ask (default: a new client of the tracking server). */
  registry?: ModelRegistry;
  /** The flag named in errors (default `--model-uri`). */
  flag?: string;
}

/**
 * The run a model URI names. `models:/` URIs need a tracking server (a file store has no registry:
 * exit 7); an unknown model, alias or version, or a version without a run, is exit 2 naming the URI.
 */
export async function resolveModelUri(raw: string | ModelUri, o: ResolveOptions = {}): Promise<ResolvedModelUri> {
  const flag = o.flag ?? "--model-uri";
  const parsed = typeof raw === "string" ? parseModelUri(raw, flag) : raw;
  if (parsed.scheme === "runs") return { uri: parsed.uri, runId: parsed.runId };
  const registry = o.registry ?? openRegistry(o.trackingUri, { env: o.env, logger: o.logger });
  const fail = (why: string) => new BadParameterError(flag, `${parsed.uri}: ${why}`);
  let version: ModelVersion | undefined;
  if ("alias" in parsed) {
    version = await registry.getModelVersionByAlias(parsed.name, parsed.alias);
    if (!version) {
      const model = await registry.getRegisteredModel(parsed.name);
      if (!model) throw fail(`no registered model named ${JSON.stringify(parsed.name)} in ${registry.uri}`);
      const aliases = Object.entries(model.aliases).map(([a, n]) => `${a} -> version ${n}`);
      throw fail(
        `model ${JSON.stringify(parsed.name)} has no alias ${JSON.stringify(parsed.alias)} (${aliases.length ? `its aliases: ${aliases.join(", ")}` : "it has no aliases"})`,
      );
    }
  } else {
    version = await registry.getModelVersion(parsed.name, parsed.version);
    if (!version) {
      const model = await registry.getRegisteredModel(parsed.name);
      if (!model) throw fail(`no registered model named ${JSON.stringify(parsed.name)} in ${registry.uri}`);
      throw fail(`model ${JSON.stringify(parsed.name)} has no version ${parsed.version}`);
    }
  }
  if (version.status !== "READY") throw fail(`version ${version.version} is ${version.status}, not READY`);
  if (!version.runId)
    throw fail(`version ${version.version} was registered without a run (source ${version.source}); ms serves models of its own runs`);
  return {
    uri: parsed.uri,
    runId: version.runId,
    name: parsed.name,
    version: version.version,
    ...("alias" in parsed ? { alias: parsed.alias } : {}),
    source: version.source,
  };
}
