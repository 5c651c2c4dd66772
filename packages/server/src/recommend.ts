/**
 * `/recommend`: the top `k` movies for each of a list of users, leaving out what the user rated in
 * the run's ratings (`exclude_seen`, default true) and any movies the request names (`exclude`).
 * With the run's ranking model (the rank step's `Ranker`, `model: "rank"`) the lists are its, from
 * each user's history (with its reasons); without one, `model: "rating"`, they are the served
 * model's highest predicted ratings over every movie it can score. `"model"` in the body asks for
 * one. The body is checked by Fastify's JSON-schema validation (`RecommendBody`); a user the
 * rating model has no factors for is refused as `/invocations` refuses one.
 */
import type { ServingModel } from "./model.js";
import { ScoringError } from "./protocol.js";

export const RecommendBody = {
  type: "object",
  required: ["users"],
  additionalProperties: false,
  properties: {
    users: { type: "array", minItems: 1, items: { type: "integer", minimum: -2147483648, maximum: 2147483647 } },
    k: { type: "integer", minimum: 1, maximum: 1000, default: 10 },
    exclude_seen: { type: "boolean", default: true },
    exclude: { type: "array", items: { type: "integer" }, default: [] },
    min_ratings: { type: "integer", minimum: 0, default: 0 },
    model: { type: "string", enum: ["auto", "rank", "rating"], default: "auto" },
  },
} as const;

export interface RecommendRequest {
  users: number[];
  k: number;
  exclude_seen: boolean;
  exclude: number[];
  min_ratings: number;
  model: "auto" | "rank" | "rating";
}

export interface UserRecommendations {
  userId: number;
  items: number[];
  scores: number[];
  /** The ranker's reasons (per item, the user's rated movies that contributed most), when it gives them. */
  reasons?: { movieId: number; contribution: number }[][];
}

/** Indices of the `k` highest scores among those not excluded, best first (ties: the lower movie id). */
function topK(scores: Float64Array, movieIds: Int32Array, skip: (i: number) => boolean, k: number): number[] {
  const best: number[] = [];
  const better = (a: number, b: number) => scores[a] > scores[b] || (scores[a] === scores[b] && movieIds[a] < movieIds[b]);
  for (let i = 0; i < scores.length; i++) {
    if (skip(i)) continue;
    if (best.length === k && !better(i, best[k - 1])) continue;
    let at = best.length === k ? k - 1 : best.length;
    while (at > 0 && better(i, best[at - 1])) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/** Whether a sorted array holds `id`. */
function sortedHas(sorted: Int32Array, id: number): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] === id) return true;
    if (sorted[mid] < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/** The rank step's lists: the ranker's top `k` (plus room for `exclude`) from each user's history. */
function rankerLists(model: ServingModel, ranker: NonNullable<ServingModel["ranker"]>, body: RecommendRequest): UserRecommendations[] {
  const excluded = new Set(body.exclude);
  return body.users.map((userId) => {
    const r = ranker.recommend(model.rated(userId), body.k + excluded.size, {
      excludeSeen: body.exclude_seen,
      minRatings: body.min_ratings,
    });
    const keep = Array.from(r.items.keys())
      .filter((i) => !excluded.has(r.items[i]))
      .slice(0, body.k);
    return {
      userId,
      items: keep.map((i) => r.items[i]),
      scores: keep.map((i) => r.scores[i]),
      ...(r.reasons ? { reasons: keep.map((i) => r.reasons?.[i] ?? []) } : {}),
    };
  });
}

export function recommendFor(
  model: ServingModel,
  body: RecommendRequest,
  maxBatch: number,
): { runId: string; model: string; recommendations: UserRecommendations[] } {
  if (body.model === "rank" && !model.ranker)
    throw new ScoringError(
      400,
      "INVALID_PARAMETER_VALUE",
      `model: run ${model.runId} has no ranking model (the rank step's); ask for "rating"`,
    );
  if (model.ranker && body.model !== "rating") {
    if (body.users.length > maxBatch)
      throw new ScoringError(400, "BAD_REQUEST", `${body.users.length} users; this server takes at most ${maxBatch}`);
    return { runId: model.runId, model: "rank", recommendations: rankerLists(model, model.ranker, body) };
  }
  if (body.users.length * model.movieIds.length > maxBatch * 100)
    throw new ScoringError(
      400,
      "BAD_REQUEST",
      `${body.users.length} users in one request is more than this server scores at once; send fewer`,
    );
  for (const u of body.users)
    if (!model.scorer.hasUser(u))
      throw new ScoringError(
        400,
        "INVALID_PARAMETER_VALUE",
        `users: user ${u} is not in the training ratings of run ${model.runId}, so the ${model.kind} model has no factors for them; this model has no cold-start rule`,
      );
  const candidates = model.movieIds;
  const excluded = new Set(body.exclude);
  const scores = new Float64Array(candidates.length);
  const users = new Int32Array(candidates.length);
  const recommendations = body.users.map((userId) => {
    users.fill(userId);
    model.scorer.score(users, candidates, scores);
    const rated = body.exclude_seen ? model.rated(userId) : new Int32Array(0);
    const best = topK(scores, candidates, (i) => excluded.has(candidates[i]) || sortedHas(rated, candidates[i]), body.k);
    return { userId, items: best.map((i) => candidates[i]), scores: best.map((i) => scores[i]) };
  });
  return { runId: model.runId, model: "rating", recommendations };
}
