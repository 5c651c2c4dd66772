/**
 * The layout of the cache root, its one owner: every directory under the root is named here and
 * nowhere else. Code that keeps something in the cache asks for its place (`cacheLayout(root).x`)
 * rather than joining a name onto the root. The names on disk are those of earlier versions, so a
 * user's cache stays valid.
 *
 *   objects/<key>/          published entries (the step's files, manifest.json, entry.json)
 *   locks/<key>.lock        held while a key is computed or removed
 *   leases/<pid>-<n>.lease  the keys a live run uses; gc leaves them alone
 *   tmp/                    where entries are built before the rename into objects/
 *   meta/                   memo files (the run report's figures); gc removes them by age
 *   downloads/              downloaded archives (the download step)
 *   datasets/               extracted and generated datasets (the download step)
 *   digests/                remembered digests of user files (contracts' digestFileRemembered)
 *   etl-scans/              remembered clean scans of ratings text (the etl step)
 *   spark-staging/          what the Spark engine of the als step hands to and gets from Spark
 *   tracking/               the driver's record of runs left open by a killed process
 *   reports/<runId>/        the driver's run reports
 */
import path from "node:path";

/** Each place's directory name under the root. */
export const CACHE_PLACES = {
  objects: "objects",
  locks: "locks",
  leases: "leases",
  tmp: "tmp",
  meta: "meta",
  downloads: "downloads",
  datasets: "datasets",
  digests: "digests",
  etlScans: "etl-scans",
  sparkStaging: "spark-staging",
  tracking: "tracking",
  reports: "reports",
} as const;

export type CachePlace = keyof typeof CACHE_PLACES;

/** The absolute directory of every place under one root. */
export type CacheLayout = { readonly root: string } & { readonly [P in CachePlace]: string };

/** The places of the cache at `root` (resolved to an absolute path; nothing is created). */
export function cacheLayout(root: string): CacheLayout {
  const abs = path.resolve(root);
  const places = Object.fromEntries(Object.entries(CACHE_PLACES).map(([place, dir]) => [place, path.join(abs, dir)]));
  return { root: abs, ...places } as CacheLayout;
}
