/**
 * @ms/keras public API (work in progress).
 */
export const packageName = "@ms/keras";
