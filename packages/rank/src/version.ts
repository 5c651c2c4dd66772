/**
 * The package version, baked in at build time by tsup from package.json, so a step can name the
 * code that produced an artifact without reading files at run time.
 */
declare const __PACKAGE_VERSION__: string | undefined;

export const RANK_VERSION: string = typeof __PACKAGE_VERSION__ === "string" ? __PACKAGE_VERSION__ : "0.0.0-dev";
