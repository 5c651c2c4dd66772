/**
 * The Spark engine's configuration text: `spark_conf` pieces (secrets refused, since parameters
 * are recorded in tracking), credentials stripped from master URLs, which masters share this
 * machine's disk, and where spark-submit is.
 */
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import { BadParameterError } from "@ms/contracts";

/** A conf key whose value is a secret: refused, since every parameter is recorded in tracking. */
const SECRET_KEY = /(secret|password|passwd|token|credential|session\.key|access\.key)/i;

/** Parses `spark_conf`; refuses malformed pieces and secrets (they would be logged as a parameter). */
export function parseSparkConf(text: string | undefined): [string, string][] {
  if (text === undefined || text.trim() === "") return [];
  const out: [string, string][] = [];
  for (const piece of text.split(",")) {
    const m = /^\s*([A-Za-z][\w.-]*)=(.*)$/s.exec(piece);
    if (m) out.push([m[1], m[2]]);
    else if (out.length > 0) out[out.length - 1][1] += `,${piece}`;
    else
      throw new BadParameterError(
        "spark_conf",
        `"${piece}" is not key=value (for example spark.executor.memory=2g,spark.executor.cores=2)`,
      );
  }
  for (const [key] of out) {
    if (SECRET_KEY.test(key)) {
      throw new BadParameterError(
        "spark_conf",
        `${key} holds a secret, and parameters are recorded in tracking; give it through the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for s3a) or spark-defaults.conf in SPARK_CONF_DIR`,
      );
    }
  }
  return out;
}

/** `scheme://user:pass@host` -> `scheme://host`, at any nesting (`k8s://https://u:p@host`) and for every host of a list (`spark://a@h1,b@h2`). */
export function stripCredentials(url: string): string {
  return url.replace(/(:\/\/|,)[^/@\s,]*@/g, "$1");
}

/** `$SPARK_HOME/bin/spark-submit` when SPARK_HOME is set, else `spark-submit` on PATH. */
export function findSparkSubmit(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SPARK_HOME) {
    const file = path.join(env.SPARK_HOME, "bin", "spark-submit");
    if (!existsSync(file))
      throw new BadParameterError(
        "SPARK_HOME",
        `${file} does not exist (als_engine=spark runs it); point SPARK_HOME at a Spark installation or unset it to use spark-submit on PATH`,
      );
    return file;
  }
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, "spark-submit");
    if (existsSync(file)) return file;
  }
  throw new BadParameterError(
    "als_engine",
    "spark needs spark-submit: SPARK_HOME is not set and no spark-submit is on PATH (set SPARK_HOME to a Spark installation, or to site-packages/pyspark of a pip-installed pyspark)",
  );
}

/** A master whose executors share this machine's file system: local[N], or a standalone master on loopback/this host. */
export function masterIsLocal(master: string | undefined): boolean {
  if (master === undefined || /^local(\[.*\])?$/.test(master)) return true;
  const m = /^spark:\/\/([^:/,]+)/.exec(master);
  return m !== null && (m[1] === "127.0.0.1" || m[1] === "localhost" || m[1] === hostname());
}
