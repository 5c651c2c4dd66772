/**
 * The `synthetic` dataset: MovieLens-shaped ratings made on this machine, for offline use and for
 * benchmarks at any scale up to ml-32m. Ratings come from a low-rank model plus user and movie
 * biases and noise, rounded to half stars; per-user activity is log-normal (at least 20 ratings,
 * as MovieLens guarantees) and movie popularity is Zipf-like. The same seed gives the same bytes.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { BadParameterError, asStorageError, mulberry32 } from "@ms/contracts";

export interface SyntheticOptions {
  rows: number;
  seed: number;
  /** Default: rows / 150, like ml-20m's ratings per user. */
  users?: number;
  /** Default: grows slowly with rows: ~9k at 100k ratings, ~27k at 20M (as in MovieLens). */
  movies?: number;
  /** Rank of the hidden structure. */
  rank?: number;
}

export const SYNTHETIC_DEFAULTS = { rows: 100_000, seed: 42, rank: 8 } as const;
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

/** How many ratings each user gives: log-normal weights, at least 20 where the total allows. */
function userActivity(rows: number, users: number, movies: number, next: () => number): Int32Array {
  const counts = new Int32Array(users);
  const cap = Math.max(1, Math.min(movies, Math.floor(movies * 0.5)));
  const floor = Math.min(MIN_PER_USER, Math.floor(rows / users), cap);
  const weights = new Float64Array(users);
  let total = 0;
  for (let u = 0; u < users; u++) {
    weights[u] = Math.exp(1.2 * gaussian(next));
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

/** Movie popularity: Zipf over a shuffled order, as cumulative weights for binary-search sampling. */
interface Popularity {
  order: Int32Array;
  cdf: Float64Array;
  total: number;
}

function moviePopularity(movies: number, next: () => number): Popularity {
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
    total += 1 / (r + 10) ** 0.9;
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
 * Fills `picked` with `n` distinct movies for user `u` by popularity (heavy users fall back to a
 * linear probe for the rest) and returns them sorted; `seenBy` marks the movies already taken.
 */
function pickMovies(u: number, n: number, popularity: Popularity, seenBy: Int32Array, picked: Int32Array, next: () => number): Int32Array {
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

/** Writes a MovieLens-format `ratings.csv`; returns the counts it made. */
export function writeSyntheticRatings(file: string, options: SyntheticOptions): { rows: number; users: number; movies: number } {
  const { rows, users, movies, rank } = syntheticShape(options);
  const next = mulberry32(options.seed);
  const counts = userActivity(rows, users, movies, next);
  const popularity = moviePopularity(movies, next);
  const movieIds = sparseMovieIds(movies, next);

  const movieFactors = new Float64Array(movies * rank);
  const movieBias = new Float64Array(movies);
  for (let i = 0; i < movies * rank; i++) movieFactors[i] = 0.35 * gaussian(next);
  for (let i = 0; i < movies; i++) movieBias[i] = 0.45 * gaussian(next);

  const userFactor = new Float64Array(rank);
  const picked = new Int32Array(movies);
  const seenBy = new Int32Array(movies).fill(-1);
  const csv = new RatingsCsv(file);
  try {
    const epochStart = 828_000_000; // 1996, when MovieLens began
    const epochSpan = 1_700_000_000 - epochStart;
    for (let u = 0; u < users; u++) {
      const n = counts[u];
      const bias = 0.4 * gaussian(next);
      for (let k = 0; k < rank; k++) userFactor[k] = 0.35 * gaussian(next);
      const mine = pickMovies(u, n, popularity, seenBy, picked, next);
      const start = epochStart + Math.floor(next() * epochSpan * 0.9);
      const span = Math.floor(next() * (epochStart + epochSpan - start));
      for (let j = 0; j < n; j++) {
        const m = mine[j];
        let score = 3.5 + bias + movieBias[m] + 0.6 * gaussian(next);
        const base = m * rank;
        for (let k = 0; k < rank; k++) score += userFactor[k] * movieFactors[base + k];
        const half = Math.min(10, Math.max(1, Math.round(score * 2)));
        csv.row(u + 1, movieIds[m], half, start + Math.floor(next() * span));
      }
    }
    csv.flush();
  } finally {
    csv.close();
  }
  return { rows, users, movies };
}
