/**
 * @ms/evaluate: the ranking step of the ms pipeline. `rankingStep` measures every model of a run
 * (ALS, the keras network, the fm step's full fit, the ranker, popularity) with @ms/rank's top-k
 * metrics on the run's test part, each user's training movies removed from the candidates, and
 * keeps three sample users' lists for the report; `readRanking` reads its artifact back.
 */
export { rankingStep, evaluateRanking, DEFAULT_RECOMMENDER, type RankingInputs } from "./step.js";
export {
  readRanking,
  RankingFileSchema,
  RANKING_FILE,
  RANKING_KIND,
  type RankingFile,
  type ModelRanking,
  type RankingSample,
} from "./artifact.js";
export { EVALUATE_VERSION } from "./version.js";
