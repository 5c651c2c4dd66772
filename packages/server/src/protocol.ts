/**
 * MLflow's scoring protocol, the part that is data: the four JSON input forms of `/invocations`
 * (`dataframe_split`, `dataframe_records`, `instances`, `inputs`) and `text/csv`, read against the
 * model's signature (`userId`, `movieId`, optional `timestamp` -> `prediction`) into two id columns
 * and, when the request has the column, the pairs' times (seconds since the epoch: a model with
 * time effects scores each pair at its time, else at the end of its training range), and the error body
 * MLflow's scoring server answers with (`{"error_code": ..., "message": ...}`, HTTP 400 for bad
 * input). Pure functions over parsed bodies, so every form and refusal is tested without a socket.
 */

/** The signature's required input columns, in order (a list of pairs is read positionally in this order). */
export const INPUT_COLUMNS = ["userId", "movieId"] as const;
/** The signature's optional input column, after them: when given, on every row. */
export const TIME_COLUMN = "timestamp";
/** The JSON input forms MLflow's scoring server accepts; a body holds exactly one. */
export const INPUT_FORMATS = ["dataframe_split", "dataframe_records", "instances", "inputs"] as const;

/** What MLflow's server says when a body holds none (or several) of the forms. */
const REQUIRED_INPUT_FORMAT = `The input must be a JSON dictionary with exactly one of the input fields {${INPUT_FORMATS.map((f) => `'${f}'`).join(", ")}}`;
/** The signature as MLflow prints it in a schema error. */
const SCHEMA_TEXT = `['${INPUT_COLUMNS.join("': long (required), '")}': long (required), '${TIME_COLUMN}': long (optional)]`;
/** A Python list literal of names, as MLflow's messages print them. */
const pyList = (names: readonly string[]) => `[${names.map((n) => `'${n}'`).join(", ")}]`;

/** A refused request: its HTTP status and MLflow's error code (databricks_pb2 names). */
export class ScoringError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly errorClass?: string,
  ) {
    super(message);
    this.name = "ScoringError";
  }

  /** MLflow's error body. */
  toJSON(): { error_code: string; message: string; error_class?: string } {
    return { error_code: this.errorCode, message: this.message, ...(this.errorClass ? { error_class: this.errorClass } : {}) };
  }
}

export const badRequest = (message: string) => new ScoringError(400, "BAD_REQUEST", message);
/** Input that does not fit the signature: MLflow's schema-enforcement refusal (400). */
const schemaError = (error: string) =>
  new ScoringError(
    400,
    "INVALID_PARAMETER_VALUE",
    `Failed to enforce schema of data with schema '${SCHEMA_TEXT}'. Error: ${error}`,
    "SCHEMA_ENFORCEMENT_FAILED",
  );

/** The (user, movie) pairs of one request, and their times when it gives the `timestamp` column. */
export interface Pairs {
  userIds: Int32Array;
  movieIds: Int32Array;
  timestamps?: Float64Array;
}

/** An id as the signature's `long` column takes it: an integer (MLflow refuses a lossy conversion). */
function idAt(value: unknown, column: string, row: number): number {
  if (typeof value === "number" && Number.isInteger(value) && Math.abs(value) <= 2 ** 31 - 1) return value;
  throw schemaError(
    `Incompatible input types for column ${column}: row ${row} holds ${JSON.stringify(value) ?? "undefined"}, not an id (an integer within int32).`,
  );
}

/** A time as the optional `timestamp` column takes it: finite seconds since the epoch. */
function timeAt(value: unknown, row: number): number {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  throw schemaError(
    `Incompatible input types for column ${TIME_COLUMN}: row ${row} holds ${JSON.stringify(value) ?? "undefined"}, not seconds since the epoch.`,
  );
}

function missingColumns(have: readonly string[]): ScoringError {
  const missing = INPUT_COLUMNS.filter((c) => !have.includes(c));
  const extra = have.filter((c) => !(INPUT_COLUMNS as readonly string[]).includes(c) && c !== TIME_COLUMN);
  return schemaError(
    `Model is missing inputs ${pyList(missing)}.${extra.length ? ` Note that there were extra inputs: ${pyList(extra)}.` : ""}`,
  );
}

function tooMany(rows: number, maxRows: number): ScoringError {
  return new ScoringError(400, "BAD_REQUEST", `${rows} rows in one request; this server takes at most ${maxRows} (--max-batch)`);
}

function alloc(rows: number, maxRows: number, timed = false): Pairs {
  if (rows > maxRows) throw tooMany(rows, maxRows);
  return { userIds: new Int32Array(rows), movieIds: new Int32Array(rows), ...(timed ? { timestamps: new Float64Array(rows) } : {}) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `[{userId, movieId}, ...]` (dataframe_records, and the records form of instances/inputs). */
function fromRecords(records: readonly unknown[], maxRows: number): Pairs {
  const out = alloc(records.length, maxRows, isRecord(records[0]) && TIME_COLUMN in records[0]);
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (!isRecord(r)) throw badRequest(`record ${i} is not a JSON object of column names to values`);
    if (!("userId" in r) || !("movieId" in r)) throw missingColumns(Object.keys(r));
    out.userIds[i] = idAt(r.userId, "userId", i);
    out.movieIds[i] = idAt(r.movieId, "movieId", i);
    if (out.timestamps) out.timestamps[i] = timeAt(r[TIME_COLUMN], i);
  }
  return out;
}

/** `{"columns": [...], "data": [[...], ...]}` (pandas' split orientation; `index` is ignored). */
function fromSplit(split: unknown, maxRows: number): Pairs {
  if (!isRecord(split) || !Array.isArray(split.data))
    throw badRequest(`dataframe_split must be an object with "columns" and "data" (pandas' split orientation)`);
  const columns = Array.isArray(split.columns) ? split.columns.map(String) : [];
  const u = columns.indexOf("userId");
  const m = columns.indexOf("movieId");
  const t = columns.indexOf(TIME_COLUMN);
  if (u < 0 || m < 0) throw missingColumns(columns);
  const data: unknown[] = split.data;
  const out = alloc(data.length, maxRows, t >= 0);
  for (let i = 0; i < data.length; i++) {
    const row = data[i];
    if (!Array.isArray(row) || row.length !== columns.length)
      throw badRequest(`dataframe_split: data row ${i} does not have the ${columns.length} values of its columns`);
    out.userIds[i] = idAt(row[u], "userId", i);
    out.movieIds[i] = idAt(row[m], "movieId", i);
    if (out.timestamps) out.timestamps[i] = timeAt(row[t], i);
  }
  return out;
}

/** `{"userId": [...], "movieId": [...]}` (the columnar form of instances/inputs). */
function fromColumns(columns: Record<string, unknown>, maxRows: number): Pairs {
  const users = columns.userId;
  const movies = columns.movieId;
  if (users === undefined || movies === undefined) throw missingColumns(Object.keys(columns));
  const us = Array.isArray(users) ? users : [users];
  const ms = Array.isArray(movies) ? movies : [movies];
  if (us.length !== ms.length) throw badRequest(`userId has ${us.length} values, movieId ${ms.length}`);
  const times = columns[TIME_COLUMN];
  const ts = times === undefined ? undefined : Array.isArray(times) ? times : [times];
  if (ts && ts.length !== us.length) throw badRequest(`userId has ${us.length} values, ${TIME_COLUMN} ${ts.length}`);
  const out = alloc(us.length, maxRows, ts !== undefined);
  for (let i = 0; i < us.length; i++) {
    out.userIds[i] = idAt(us[i], "userId", i);
    out.movieIds[i] = idAt(ms[i], "movieId", i);
    if (out.timestamps) out.timestamps[i] = timeAt(ts?.[i], i);
  }
  return out;
}

/** instances / inputs: records, columns, or `[[userId, movieId(, timestamp)], ...]` in the signature's order. */
function fromTensorInput(value: unknown, key: string, maxRows: number): Pairs {
  if (isRecord(value)) return fromColumns(value, maxRows);
  if (!Array.isArray(value)) throw badRequest(`${key} must be a list of records or pairs, or an object of columns`);
  if (value.length === 0 || isRecord(value[0])) return fromRecords(value, maxRows);
  const width = Array.isArray(value[0]) && value[0].length === 3 ? 3 : 2;
  const out = alloc(value.length, maxRows, width === 3);
  for (let i = 0; i < value.length; i++) {
    const row: unknown = value[i];
    if (!Array.isArray(row) || row.length !== width)
      throw badRequest(
        `${key}: row ${i} is not a [userId, movieId${width === 3 ? ", timestamp" : ""}] row (expected an n x ${width} array, the signature's columns in order)`,
      );
    out.userIds[i] = idAt(row[0], "userId", i);
    out.movieIds[i] = idAt(row[1], "movieId", i);
    if (out.timestamps) out.timestamps[i] = timeAt(row[2], i);
  }
  return out;
}

/** The pairs of a parsed JSON body in any of MLflow's four forms; anything else is a 400 as MLflow answers it. */
export function pairsFromJson(body: unknown, maxRows: number): Pairs {
  const keys = isRecord(body) ? Object.keys(body).filter((k) => (INPUT_FORMATS as readonly string[]).includes(k)) : [];
  if (Array.isArray(body)) throw badRequest(`Invalid input. ${REQUIRED_INPUT_FORMAT}. Received a list.`);
  if (!isRecord(body)) throw badRequest(`Invalid input. ${REQUIRED_INPUT_FORMAT}. Received unexpected input type '${typeof body}'.`);
  if (keys.length !== 1) throw badRequest(`${REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: ${pyList(Object.keys(body))}.`);
  const key = keys[0];
  const value = body[key];
  if (key === "dataframe_split") return fromSplit(value, maxRows);
  if (key === "dataframe_records") {
    if (!Array.isArray(value)) throw badRequest("dataframe_records must be a list of records (pandas' records orientation)");
    return fromRecords(value, maxRows);
  }
  return fromTensorInput(value, key, maxRows);
}

/** A CSV body with a header naming the columns (pandas' `read_csv`), ids as decimal integers. */
export function pairsFromCsv(text: string, maxRows: number): Pairs {
  const lines = text.split(/\r?\n/);
  while (lines.length && lines[lines.length - 1].trim() === "") lines.pop();
  if (!lines.length)
    throw badRequest(
      "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: 'No columns to parse from file'",
    );
  const header = lines[0].split(",").map((c) => c.trim().replace(/^"(.*)"$/, "$1"));
  const u = header.indexOf("userId");
  const m = header.indexOf("movieId");
  const t = header.indexOf(TIME_COLUMN);
  if (u < 0 || m < 0) throw missingColumns(header);
  const out = alloc(lines.length - 1, maxRows, t >= 0);
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i].split(",");
    out.userIds[i - 1] = idAt(csvNumber(f[u]), "userId", i - 1);
    out.movieIds[i - 1] = idAt(csvNumber(f[m]), "movieId", i - 1);
    if (out.timestamps) out.timestamps[i - 1] = timeAt(csvNumber(f[t], true), i - 1);
  }
  return out;
}

/** A CSV field as the number it spells (an integer; with `fraction`, any decimal), else the text. */
function csvNumber(field: string | undefined, fraction = false): unknown {
  const t = field?.trim() ?? "";
  return (fraction ? /^-?\d+(\.\d*)?$/ : /^-?\d+(\.0*)?$/).test(t) ? Number(t) : t;
}
