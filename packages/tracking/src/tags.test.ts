/**
 * The tag names are a wire format: MLflow's UI and clients read the `mlflow.*` ones by exactly
 * these spellings (mlflow/utils/mlflow_tags.py), and runs already stored carry the `ms.*` ones.
 */
import { describe, expect, it } from "vitest";
import { TAGS } from "./tags.js";

describe("TAGS", () => {
  it("spells MLflow's system tags and the ms tags as stored runs carry them", () => {
    expect(TAGS).toEqual({
      parent: "mlflow.parentRunId",
      runName: "mlflow.runName",
      user: "mlflow.user",
      entryPoint: "mlflow.project.entryPoint",
      gitCommit: "mlflow.source.git.commit",
      sourceName: "mlflow.source.name",
      sourceType: "mlflow.source.type",
      cacheKey: "ms.cache.key",
      owner: "ms.owner",
      cacheHit: "ms.cache.hit",
      cacheSource: "ms.cache.source",
      producedBy: "ms.cache.producedByRun",
      step: "ms.step",
      fold: "ms.fold",
    });
  });
});
