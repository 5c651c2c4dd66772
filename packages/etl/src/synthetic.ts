/**
 * The `synthetic` dataset: MovieLens-shaped ratings made on this machine, for offline use and for
 * benchmarks at any scale up to ml-32m, rounded to half stars, at least 20 ratings per user where
 * the total allows (as MovieLens guarantees). Three kinds, each built so that one family of model
 * features has something to find; the same kind and seed give the same bytes:
 * - `lowrank`: a low-rank model plus user and movie biases and noise; log-normal activity,
 *   Zipf-like popularity, timestamps that carry no signal.
 * - `drift`: the same structure, with time: users active over spans of days to years, movie biases
 *   drifting linearly over the decades, user biases drifting as timeSVD++'s dev_u(t), and a
 *   per-user day effect (ratings come in sessions of days).
 * - `powerlaw`: Pareto activity and steep Zipf popularity; a movie's bias grows with its
 *   popularity, and a user keeps a proposed movie with a probability rising with their taste for
 *   it, so which movies were rated says something about how they were rated.
 * - `taste`: lowrank's ratings, but which movies a user rates is led by their taste (a proposed
 *   movie is kept with a probability steeply rising with u . v_m), as people choose what they
 *   watch: the one kind where a personal top-N list has more to find than popularity.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { BadParameterError, asStorageError, mulberry32 } from "@ms/contracts";

export const SYNTHETIC_KINDS = ["lowrank", "drift", "powerlaw", "taste"] as const;
export type SyntheticKind = (typeof SYNTHETIC_KINDS)[number];

export interface SyntheticOptions {
  rows: number;
  seed: number;
  /** Default `lowrank`. */
  kind?: SyntheticKind;
  /** Default: rows / 150, like ml-20m's ratings per user. */
  users?: number;
  /** Default: grows slowly with rows: ~9k at 100k ratings, ~27k at 20M (as in MovieLens). */
  movies?: number;
  /** Rank of the hidden structure. */
  rank?: number;
}

export const SYNTHETIC_DEFAULTS = { rows: 100_000, seed: 42, rank: 8, kind: "lowrank" } as const;
export const SYNTHETIC_MAX_ROWS = 40_000_000;
const MIN_PER_USER = 20;

function gaussian(next: () => number): number {
  const u = 1 - next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
}

export function syntheticShape(options: SyntheticOptions): { rows: number; users: number; movies: number; rank: number } {
  const rows = options.rows;
  if (!Number.isInteger(rows) || rows < 1 || rows > SYNTHETIC_MAX_ROWS)
    throw new BadParameterError("rows", `must be an integer in [1, ${SYNTHETIC_MAX_ROWS}], got ${rows}`);
  const users = options.users ?? Math.max(1, Math.round(rows / 150));
  const movies = options.movies ?? Math.max(50, Math.round(9000 * (rows / 100_000) ** 0.21));
  const rank = options.rank ?? SYNTHETIC_DEFAULTS.rank;
  if (!Number.isInteger(users) || users < 1) throw new BadParameterError("users", `must be a positive integer, got ${users}`);
  if (!Number.isInteger(movies) || movies < 1) throw new BadParameterError("movies", `must be a positive integer, got ${movies}`);
  if (rows > users * movies) throw new BadParameterError("rows", `${rows} ratings do not fit ${users} users x ${movies} movies`);
  return { rows, users, movies, rank };
}

/** How many ratings each user gives: in proportion to `weight()` draws, at least 20 where the total allows. */
function userActivity(rows: number, users: number, movies: number, weight: () => number): Int32Array {
  const counts = new Int32Array(users);
  const cap = Math.max(1, Math.min(movies, Math.floor(movies * 0.5)));
  const floor = Math.min(MIN_PER_USER, Math.floor(rows / users), cap);
  const weights = new Float64Array(users);
  let total = 0;
  for (let u = 0; u < users; u++) {
    weights[u] = weight();
    total += weights[u];
  }
  let assigned = 0;
  const spare = rows - floor * users;
  for (let u = 0; u < users; u++) {
    counts[u] = Math.min(cap, floor + Math.floor((spare * weights[u]) / total));
    assigned += counts[u];
  }
  // Hand out what rounding and the cap left over, round-robin, so the total is exact.
  for (let u = 0; assigned < rows; u = (u + 1) % users) {
    if (counts[u] < movies) {
      counts[u]++;
      assigned++;
    }
  }
  return counts;
}

/** Movie popularity: Zipf, 1 / (r + offset)^exponent at rank r, over a shuffled order, as cumulative weights. */
interface Popularity {
  order: Int32Array;
  cdf: Float64Array;
  total: number;
}

function moviePopularity(movies: number, next: () => number, exponent = 0.9, offset = 10): Popularity {
  const order = new Int32Array(movies);
  for (let i = 0; i < movies; i++) order[i] = i;
  for (let i = movies - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  const cdf = new Float64Array(movies);
  let total = 0;
  for (let r = 0; r < movies; r++) {
    total += 1 / (r + offset) ** exponent;
    cdf[r] = total;
  }
  return { order, cdf, total };
}

/** Sparse, increasing movie ids as in MovieLens (gaps between ids). */
function sparseMovieIds(movies: number, next: () => number): Int32Array {
  const movieIds = new Int32Array(movies);
  for (let i = 0, id = 0; i < movies; i++) {
    id += 1 + Math.floor(next() * 3);
    movieIds[i] = id;
  }
  return movieIds;
}

/**
 * Fills `picked` with `n` distinct movies for user `u` by popularity, a proposal kept when `keep(m)`
 * says so (heavy users fall back to a linear probe for the rest, kept unconditionally), and returns
 * them sorted; `seenBy` marks the movies already taken.
 */
function pickMovies(
  u: number,
  n: number,
  popularity: Popularity,
  seenBy: Int32Array,
  picked: Int32Array,
  next: () => number,
  keep?: (m: number) => boolean,
): Int32Array {
  const { order, cdf, total } = popularity;
  const movies = order.length;
  let got = 0;
  let tries = 0;
  while (got < n) {
    let m: number;
    if (tries++ < n * 8) {
      const target = next() * total;
      let lo = 0;
      let hi = movies - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cdf[mid] < target) lo = mid + 1;
        else hi = mid;
      }
      m = order[lo];
      if (keep && seenBy[m] !== u && !keep(m)) continue;
    } else {
      m = Math.floor(next() * movies);
      while (seenBy[m] === u) m = (m + 1) % movies;
    }
    if (seenBy[m] === u) continue;
    seenBy[m] = u;
    picked[got++] = m;
  }
  return picked.subarray(0, n).sort();
}

/** `ratings.csv` rows written through a 4 MiB buffer, storage failures as StorageError naming the file. */
class RatingsCsv {
  private static readonly BUF = 1 << 22;
  private readonly buf = Buffer.allocUnsafe(RatingsCsv.BUF);
  private readonly digits = new Uint8Array(20);
  private readonly halfStars = Array.from({ length: 10 }, (_, i) => Buffer.from(((i + 1) / 2).toFixed(1)));
  private pos = 0;
  private readonly fd: number;

  constructor(private readonly file: string) {
    try {
      this.fd = openSync(file, "w");
    } catch (error) {
      throw asStorageError(error, file);
    }
    this.pos += this.buf.write("userId,movieId,rating,timestamp\n", this.pos, "latin1");
  }

  /** One row; `half` is the rating in half stars (1..10). */
  row(userId: number, movieId: number, half: number, timestamp: number): void {
    const { buf } = this;
    if (this.pos > RatingsCsv.BUF - 64) this.flush();
    this.writeInt(userId);
    buf[this.pos++] = 44;
    this.writeInt(movieId);
    buf[this.pos++] = 44;
    const stars = this.halfStars[half - 1];
    stars.copy(buf, this.pos);
    this.pos += stars.length;
    buf[this.pos++] = 44;
    this.writeInt(timestamp);
    buf[this.pos++] = 10;
  }

  flush(): void {
    try {
      writeSync(this.fd, this.buf, 0, this.pos);
    } catch (error) {
      throw asStorageError(error, this.file);
    }
    this.pos = 0;
  }

  close(): void {
    closeSync(this.fd);
  }

  private writeInt(value: number): void {
    const { buf, digits } = this;
    let n = value;
    let len = 0;
    do {
      digits[len++] = 48 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
    while (len > 0) buf[this.pos++] = digits[--len];
  }
}

const EPOCH_START = 828_000_000; // 1996, when MovieLens began
const EPOCH_END = 1_700_000_000;
const DAY = 86_400;
const YEAR = 365.25 * DAY;
/** Pareto tail index of powerlaw activity: below 1.5 the busiest users hold a large share of all ratings. */
const ACTIVITY_ALPHA = 0.9;

type Shape = ReturnType<typeof syntheticShape>;

/** Movie factors (sd 0.35 per coordinate) and biases (sd `biasSd`), movie-major. */
function movieTraits(movies: number, rank: number, biasSd: number, next: () => number): { factors: Float64Array; bias: Float64Array } {
  const factors = new Float64Array(movies * rank);
  const bias = new Float64Array(movies);
  for (let i = 0; i < movies * rank; i++) factors[i] = 0.35 * gaussian(next);
  for (let i = 0; i < movies; i++) bias[i] = biasSd * gaussian(next);
  return { factors, bias };
}

/** u . v_m for the user factor `user` and movie m. */
function taste(user: Float64Array, movieFactors: Float64Array, m: number): number {
  const rank = user.length;
  let s = 0;
  for (let k = 0; k < rank; k++) s += user[k] * movieFactors[m * rank + k];
  return s;
}

function halfStars(score: number): number {
  return Math.min(10, Math.max(1, Math.round(score * 2)));
}

/**
 * lowrank: r = 3.5 + b_u + b_m + u . v_m + N(0, 0.6^2); timestamps uniform over each user's span.
 * `exposure`, given the user's taste for a movie (u . v_m), says whether a movie proposed by
 * popularity is kept (the taste kind); without it every proposal is kept.
 */
function writeLowRank(
  csv: RatingsCsv,
  { rows, users, movies, rank }: Shape,
  next: () => number,
  exposure?: (taste: (m: number) => number) => (m: number) => boolean,
): void {
  const counts = userActivity(rows, users, movies, () => Math.exp(1.2 * gaussian(next)));
  const popularity = moviePopularity(movies, next);
  const movieIds = sparseMovieIds(movies, next);
  const { factors, bias: movieBias } = movieTraits(movies, rank, 0.45, next);
  const userFactor = new Float64Array(rank);
  const picked = new Int32Array(movies);
  const seenBy = new Int32Array(movies).fill(-1);
  const keep = exposure?.((m) => taste(userFactor, factors, m));
  const epochSpan = EPOCH_END - EPOCH_START;
  for (let u = 0; u < users; u++) {
    const n = counts[u];
    const bias = 0.4 * gaussian(next);
    for (let k = 0; k < rank; k++) userFactor[k] = 0.35 * gaussian(next);
    const mine = pickMovies(u, n, popularity, seenBy, picked, next, keep);
    const start = EPOCH_START + Math.floor(next() * epochSpan * 0.9);
    const span = Math.floor(next() * (EPOCH_START + epochSpan - start));
    for (let j = 0; j < n; j++) {
      const m = mine[j];
      // Summed in this order, term by term, so the bytes stay those of the generator before the kinds.
      let score = 3.5 + bias + movieBias[m] + 0.6 * gaussian(next);
      for (let k = 0; k < rank; k++) score += userFactor[k] * factors[m * rank + k];
      csv.row(u + 1, movieIds[m], halfStars(score), start + Math.floor(next() * span));
    }
  }
}

/**
 * drift: r = 3.5 + b_u + a_u dev_u(t) + b_{u,day} + b_m + c_m (t - mid) / decade + u . v_m + N(0, 0.5^2),
 * dev_u(t) = sign(t - t_u) |t - t_u|^0.4 in years around the user's mid-span t_u (timeSVD++);
 * a user's ratings fall on one of their rating days (1 per ~2-10 ratings), each with its own b_{u,day}.
 */
function writeDrift(csv: RatingsCsv, { rows, users, movies, rank }: Shape, next: () => number): void {
  const counts = userActivity(rows, users, movies, () => Math.exp(1.2 * gaussian(next)));
  const popularity = moviePopularity(movies, next);
  const movieIds = sparseMovieIds(movies, next);
  const { factors, bias: movieBias } = movieTraits(movies, rank, 0.4, next);
  const movieSlope = new Float64Array(movies);
  for (let i = 0; i < movies; i++) movieSlope[i] = 0.5 * gaussian(next);
  const mid = (EPOCH_START + EPOCH_END) / 2;
  const userFactor = new Float64Array(rank);
  const picked = new Int32Array(movies);
  const seenBy = new Int32Array(movies).fill(-1);
  for (let u = 0; u < users; u++) {
    const n = counts[u];
    const bias = 0.4 * gaussian(next);
    const slope = 0.3 * gaussian(next);
    for (let k = 0; k < rank; k++) userFactor[k] = 0.35 * gaussian(next);
    const mine = pickMovies(u, n, popularity, seenBy, picked, next);
    const start = EPOCH_START + Math.floor(next() * (EPOCH_END - EPOCH_START) * 0.85);
    // sqrt of a uniform: most users stay for years, some for days.
    const span = Math.max(DAY, Math.floor(Math.sqrt(next()) * (EPOCH_END - start)));
    const centre = start + span / 2;
    const days = 1 + Math.floor(n / (2 + next() * 8));
    const dayStart = new Float64Array(days);
    const dayEffect = new Float64Array(days);
    for (let d = 0; d < days; d++) {
      dayStart[d] = Math.floor((start + next() * span) / DAY) * DAY;
      dayEffect[d] = 0.35 * gaussian(next);
    }
    for (let j = 0; j < n; j++) {
      const m = mine[j];
      const d = Math.floor(next() * days);
      const t = dayStart[d] + Math.floor(next() * DAY * 0.5);
      const years = (t - centre) / YEAR;
      const drift = slope * Math.sign(years) * Math.abs(years) ** 0.4 + (movieSlope[m] * (t - mid)) / (10 * YEAR);
      const score = 3.5 + bias + dayEffect[d] + movieBias[m] + drift + taste(userFactor, factors, m) + 0.5 * gaussian(next);
      csv.row(u + 1, movieIds[m], halfStars(score), t);
    }
  }
}

/**
 * powerlaw: activity ~ Pareto(alpha 0.9), popularity 1 / (r + 1)^1.1; b_m = N(0, 0.35^2) + 0.08 (ln M - 1 - ln(r + 1))
 * for popularity rank r (popular movies are better liked); a proposed movie is kept with probability
 * sigmoid(3 (u . v_m + b_m / 2)), so a user's rated set leans to their taste; r = 3.3 + b_u + b_m + u . v_m + N(0, 0.6^2).
 */
function writePowerLaw(csv: RatingsCsv, { rows, users, movies, rank }: Shape, next: () => number): void {
  const counts = userActivity(rows, users, movies, () => Math.min(1e4, (1 - next()) ** (-1 / ACTIVITY_ALPHA)));
  const popularity = moviePopularity(movies, next, 1.1, 1);
  const movieIds = sparseMovieIds(movies, next);
  const { factors, bias: movieBias } = movieTraits(movies, rank, 0.35, next);
  for (let r = 0; r < movies; r++) movieBias[popularity.order[r]] += 0.08 * (Math.log(movies) - 1 - Math.log(r + 1));
  const userFactor = new Float64Array(rank);
  const picked = new Int32Array(movies);
  const seenBy = new Int32Array(movies).fill(-1);
  const keep = (m: number) => next() * (1 + Math.exp(-3 * (taste(userFactor, factors, m) + movieBias[m] / 2))) < 1;
  for (let u = 0; u < users; u++) {
    const n = counts[u];
    const bias = 0.4 * gaussian(next);
    for (let k = 0; k < rank; k++) userFactor[k] = 0.35 * gaussian(next);
    const mine = pickMovies(u, n, popularity, seenBy, picked, next, keep);
    const start = EPOCH_START + Math.floor(next() * (EPOCH_END - EPOCH_START) * 0.9);
    const span = Math.floor(next() * (EPOCH_END - start));
    for (let j = 0; j < n; j++) {
      const m = mine[j];
      const score = 3.3 + bias + movieBias[m] + taste(userFactor, factors, m) + 0.6 * gaussian(next);
      csv.row(u + 1, movieIds[m], halfStars(score), start + Math.floor(next() * span));
    }
  }
}

/** How steeply `taste` exposure follows taste: keep probability sigmoid(TASTE_SLOPE u . v_m + TASTE_OFFSET). */
const TASTE_SLOPE = 8;
const TASTE_OFFSET = -2;

/**
 * taste: lowrank's ratings (log-normal activity, Zipf popularity, biases sd 0.4 and 0.45, rank-8
 * taste, noise sd 0.6), but a movie proposed by popularity is kept with probability
 * sigmoid(8 u . v_m - 2) (u . v_m has sd ~0.35, so about a quarter of proposals are kept, mostly
 * the ones the user likes): co-rated movies share taste, and the ratings given lean high.
 */
function writeTaste(csv: RatingsCsv, shape: Shape, next: () => number): void {
  writeLowRank(csv, shape, next, (tasteFor) => (m) => next() * (1 + Math.exp(-(TASTE_SLOPE * tasteFor(m) + TASTE_OFFSET))) < 1);
}

const WRITERS: Record<SyntheticKind, (csv: RatingsCsv, shape: Shape, next: () => number) => void> = {
  lowrank: writeLowRank,
  drift: writeDrift,
  powerlaw: writePowerLaw,
  taste: writeTaste,
};

/** Writes a MovieLens-format `ratings.csv` of the given kind; returns the counts it made. */
export function writeSyntheticRatings(file: string, options: SyntheticOptions): { rows: number; users: number; movies: number } {
  const shape = syntheticShape(options);
  const kind = options.kind ?? SYNTHETIC_DEFAULTS.kind;
  const write = WRITERS[kind];
  if (!write) throw new BadParameterError("synthetic_kind", `unknown kind "${kind}"; known: ${SYNTHETIC_KINDS.join(", ")}`);
  const csv = new RatingsCsv(file);
  try {
    write(csv, shape, mulberry32(options.seed));
    csv.flush();
  } finally {
    csv.close();
  }
  return { rows: shape.rows, users: shape.users, movies: shape.movies };
}
