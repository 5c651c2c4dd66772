/**
 * @ms/tracking public API (work in progress).
 */
export const packageName = "@ms/tracking";
