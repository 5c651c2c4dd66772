/**
 * The one grammar of a user or movie id typed by a person or read from a pairs file: decimal
 * digits (with an optional minus), in the INT32 range the ratings artifacts hold. `Number()` alone
 * would take `0x1`, `1e0`, `1.0` and an empty field (as 0) for ids.
 */

const ID = /^-?[0-9]+$/;
const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

/** The id `text` spells, or undefined when it is not decimal digits in the INT32 range. */
export function parseId(text: string): number | undefined {
  const t = text.trim();
  if (!ID.test(t)) return undefined;
  const n = Number(t);
  return n >= INT32_MIN && n <= INT32_MAX ? n : undefined;
}
