/**
 * The package version, baked in at build time by tsup from package.json (what `/version` answers).
 */
declare const __PACKAGE_VERSION__: string | undefined;

export const SERVER_VERSION: string = typeof __PACKAGE_VERSION__ === "string" ? __PACKAGE_VERSION__ : "0.0.0-dev";
