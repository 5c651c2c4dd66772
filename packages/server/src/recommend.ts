/**
 * `/recommend`: the top `k` movies for each of a list of users, by the served model's predicted
 * rating over every movie it can score, leaving out what the user rated in the run's ratings
 * (`exclude_seen`, default true) and any movies the request names (`exclude`). The body is checked
 * by Fastify's JSON-schema validation (`RecommendBody`); an unknown user is refused as
 * `/invocations` refuses one.
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
  },
} as const;

export interface RecommendRequest {
  users: number[];
  k: number;
  exclude_seen: boolean;
  exclude: number[];
}

export interface UserRecommendations {
  userId: number;
  items: number[];
  scores: number[];
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

export function recommendFor(
  model: ServingModel,
  body: RecommendRequest,
  maxBatch: number,
): { runId: string; model: string; recommendations: UserRecommendations[] } {
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
  return { runId: model.runId, model: model.kind, recommendations };
}
