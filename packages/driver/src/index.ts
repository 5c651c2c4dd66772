/**
 * @ms/driver public API (work in progress).
 */
export const packageName = "@ms/driver";
