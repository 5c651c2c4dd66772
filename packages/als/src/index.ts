/**
 * @ms/als public API (work in progress).
 */
export const packageName = "@ms/als";
