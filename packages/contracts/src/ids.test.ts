/** parseId: decimal digits in the INT32 range, nothing that Number() would also take. */
import { describe, expect, it } from "vitest";
import { parseId } from "./index.js";

describe("parseId", () => {
  it("takes decimal digits, with a minus and surrounding blanks, in the INT32 range", () => {
    expect(parseId("1")).toBe(1);
    expect(parseId(" 42 ")).toBe(42);
    expect(parseId("-7")).toBe(-7);
    expect(parseId("2147483647")).toBe(2_147_483_647);
  });

  it("refuses what Number() would take for an id", () => {
    for (const text of ["0x1", "1e0", "9.9e1", "1.0", "", " ", "+1", "1_000", "Infinity", "2147483648", "-2147483649", "0b1", "٣"]) {
      expect(parseId(text), JSON.stringify(text)).toBeUndefined();
    }
  });
});
