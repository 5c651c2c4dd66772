/**
 * The scoring protocol's input forms read to the same pairs, and each refusal with MLflow's status
 * and error code; the model slot disposes of a swapped-out model only after its last request.
 */
import { describe, expect, it } from "vitest";
import { pairsFromCsv, pairsFromJson, ScoringError } from "./protocol.js";
import { ModelSlot } from "./slot.js";

const PAIRS = [
  [1, 10],
  [2, 20],
  [3, 30],
];
const expected = { userIds: Int32Array.from([1, 2, 3]), movieIds: Int32Array.from([10, 20, 30]) };
const records = PAIRS.map(([userId, movieId]) => ({ userId, movieId }));

function refusal(f: () => unknown): ScoringError {
  try {
    f();
  } catch (error) {
    if (error instanceof ScoringError) return error;
    throw error;
  }
  throw new Error("not refused");
}

describe("pairsFromJson / pairsFromCsv", () => {
  it("reads the four JSON forms and CSV to the same pairs, columns by name", () => {
    const forms = [
      { dataframe_split: { columns: ["movieId", "extra", "userId"], data: PAIRS.map(([u, m]) => [m, "x", u]), index: [0, 1, 2] } },
      { dataframe_records: records },
      { instances: records },
      { inputs: { userId: [1, 2, 3], movieId: [10, 20, 30] } },
      { inputs: PAIRS, params: {} },
    ];
    for (const body of forms) expect(pairsFromJson(body, 10)).toEqual(expected);
    expect(pairsFromCsv('"movieId",userId\r\n10,1\r\n20,2\r\n30.0,3\r\n\r\n', 10)).toEqual(expected);
  });

  it("refuses what MLflow refuses, with its codes", () => {
    const cases: [unknown, string, RegExp][] = [
      [[1], "BAD_REQUEST", /Received a list/],
      [{}, "BAD_REQUEST", /exactly one of the input fields/],
      [{ instances: records, inputs: records }, "BAD_REQUEST", /exactly one/],
      [{ dataframe_records: [{ userId: 1 }] }, "INVALID_PARAMETER_VALUE", /missing inputs \['movieId'\]/],
      [
        { dataframe_split: { columns: ["u", "m"], data: [[1, 2]] } },
        "INVALID_PARAMETER_VALUE",
        /missing inputs \['userId', 'movieId'\]\. Note that there were extra inputs: \['u', 'm'\]/,
      ],
      [{ dataframe_records: [{ userId: "1", movieId: 2 }] }, "INVALID_PARAMETER_VALUE", /column userId/],
      [{ inputs: [[1, 2.5]] }, "INVALID_PARAMETER_VALUE", /column movieId/],
      [{ inputs: [[1, 2, 3, 4]] }, "BAD_REQUEST", /not a \[userId, movieId\] row/],
      [{ inputs: { userId: [1, 2], movieId: [1] } }, "BAD_REQUEST", /2 values, movieId 1/],
      [{ dataframe_split: { columns: ["userId", "movieId"], data: [[1]] } }, "BAD_REQUEST", /row 0/],
      [{ dataframe_records: [{ userId: 2 ** 40, movieId: 1 }] }, "INVALID_PARAMETER_VALUE", /int32/],
    ];
    for (const [body, code, message] of cases) {
      const e = refusal(() => pairsFromJson(body, 10));
      expect(e.status, JSON.stringify(body)).toBe(400);
      expect(e.errorCode, JSON.stringify(body)).toBe(code);
      expect(e.message).toMatch(message);
    }
    expect(refusal(() => pairsFromCsv("", 10)).errorCode).toBe("BAD_REQUEST");
    expect(refusal(() => pairsFromCsv("userId,item\n1,2\n", 10)).message).toMatch(/missing inputs \['movieId'\]/);
    expect(refusal(() => pairsFromCsv("userId,movieId\n1,x\n", 10)).message).toMatch(/column movieId/);
  });

  it("reads the optional timestamp column in every form; without it, no times", () => {
    const times = Float64Array.from([100, 200.5, 300]);
    const timed = { ...expected, timestamps: times };
    const forms = [
      { dataframe_split: { columns: ["timestamp", "movieId", "userId"], data: PAIRS.map(([u, m], i) => [times[i], m, u]) } },
      { dataframe_records: records.map((r, i) => ({ ...r, timestamp: times[i] })) },
      { inputs: { userId: [1, 2, 3], movieId: [10, 20, 30], timestamp: [100, 200.5, 300] } },
      { inputs: PAIRS.map(([u, m], i) => [u, m, times[i]]) },
    ];
    for (const body of forms) expect(pairsFromJson(body, 10)).toEqual(timed);
    expect(pairsFromCsv("userId,movieId,timestamp\n1,10,100\n2,20,200.5\n3,30,300\n", 10)).toEqual(timed);
    expect(pairsFromJson({ dataframe_records: records }, 10).timestamps).toBeUndefined();
    const bad: unknown[] = [
      {
        dataframe_records: [
          { userId: 1, movieId: 2, timestamp: 5 },
          { userId: 1, movieId: 3 },
        ],
      },
      { inputs: { userId: [1], movieId: [2], timestamp: ["soon"] } },
      { inputs: [[1, 2, null]] },
    ];
    for (const body of bad) {
      const e = refusal(() => pairsFromJson(body, 10));
      expect(e.errorCode, JSON.stringify(body)).toBe("INVALID_PARAMETER_VALUE");
      expect(e.message).toMatch(/column timestamp: row \d holds/);
    }
    expect(refusal(() => pairsFromCsv("userId,movieId,timestamp\n1,2,x\n", 10)).message).toMatch(/column timestamp/);
  });

  it("refuses more rows than the batch limit before reading them", () => {
    const e = refusal(() => pairsFromJson({ inputs: Array.from({ length: 11 }, () => [1, 2]) }, 10));
    expect(e.message).toMatch(/11 rows .* at most 10/);
    expect(pairsFromJson({ inputs: Array.from({ length: 10 }, () => [1, 2]) }, 10).userIds).toHaveLength(10);
  });

  it("serialises as MLflow's error body", () => {
    const e = refusal(() => pairsFromJson({ dataframe_records: [{ userId: 1 }] }, 10));
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      error_code: "INVALID_PARAMETER_VALUE",
      message: e.message,
      error_class: "SCHEMA_ENFORCEMENT_FAILED",
    });
  });
});

describe("ModelSlot", () => {
  it("disposes of a swapped-out model once its last request is done, and of the current one at close", () => {
    const disposed: string[] = [];
    const model = (name: string) => ({ name, dispose: () => disposed.push(name) });
    const a = model("a");
    const slot = new ModelSlot(a);
    const held = slot.acquire();
    slot.swap(model("b"));
    expect(slot.current.name).toBe("b");
    expect(disposed).toEqual([]);
    slot.release(held);
    expect(disposed).toEqual(["a"]);
    slot.release(slot.acquire());
    slot.close();
    expect(disposed).toEqual(["a", "b"]);
  });
});
