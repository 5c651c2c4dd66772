/**
 * Model URIs: the forms ms serves parsed as MLflow parses them, malformed ones refused with exit 2
 * naming the URI, `models:/` on a file store refused with exit 7 (no registry), and `runs:/ID/model`
 * locating the run as `--run` does (a step run meaning its parent). The registry side of
 * `resolveModelUri` runs against a real mlflow server in @ms/tracking's and @ms/driver's slow tests.
 */
import { exitCodeFor } from "@ms/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture, type Fixture } from "./__tests__/fixture.js";
import { locateRun } from "./locate.js";
import { parseModelUri, resolveModelUri } from "./model-uri.js";

describe("parseModelUri", () => {
  it("reads aliases, versions and run URIs as MLflow does", () => {
    expect(parseModelUri("models:/movielens@champion")).toEqual({
      scheme: "models",
      uri: "models:/movielens@champion",
      name: "movielens",
      alias: "champion",
    });
    // The last '@' separates the alias (MLflow's rsplit).
    expect(parseModelUri("models:/team@ms@canary")).toMatchObject({ name: "team@ms", alias: "canary" });
    expect(parseModelUri("models:/movielens keras/12")).toMatchObject({ name: "movielens keras", version: 12 });
    expect(parseModelUri("runs:/0123abcd/model")).toEqual({ scheme: "runs", uri: "runs:/0123abcd/model", runId: "0123abcd" });
    expect(parseModelUri("runs:/0123abcd")).toMatchObject({ runId: "0123abcd" });
  });

  it("a malformed URI is exit 2 naming the URI and the forms", () => {
    const cases = [
      "movielens",
      "models://host/m@a",
      "s3://bucket/model",
      "models:/",
      "models:/m",
      "models:/@champion",
      "models:/m@",
      "models:/m/0",
      "models:/m/Production",
      "models:/m/1/extra",
      "runs:/",
      "runs:/abc/other/path",
    ];
    for (const uri of cases) {
      let error: unknown;
      try {
        parseModelUri(uri);
      } catch (e) {
        error = e;
      }
      expect(exitCodeFor(error), uri).toBe(2);
      expect((error as Error).message, uri).toContain(JSON.stringify(uri));
      expect((error as Error).message, uri).toMatch(
        /--model-uri: .*give models:\/NAME@ALIAS, models:\/NAME\/VERSION or runs:\/RUN_ID\/model/,
      );
    }
  });
});

describe("resolveModelUri and locateRun", () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await fixture();
  });
  afterAll(async () => fx.dispose());

  it("models:/ on a file store is exit 7: it has no registry", async () => {
    const error = await resolveModelUri("models:/m@champion", { trackingUri: fx.mlruns, env: {} }).catch((e: unknown) => e);
    expect(exitCodeFor(error)).toBe(7);
    expect((error as Error).message).toContain("no model registry");
  });

  it("runs:/ID/model of a step run locates its ms run; an unknown run is exit 2 naming the URI", async () => {
    const where = { entries: fx.store, trackingUri: fx.mlruns, env: {} };
    const uri = `runs:/${fx.entries[1].runId}/model`;
    const run = await locateRun({ ...where, modelUri: uri });
    expect(run.runId).toBe(fx.parentRunId);
    expect(run.modelUri).toEqual({ uri, runId: fx.entries[1].runId });
    const unknown = await locateRun({ ...where, modelUri: "runs:/ffffffff/model" }).catch((e: unknown) => e);
    expect(exitCodeFor(unknown)).toBe(2);
    expect((unknown as Error).message).toMatch(/--model-uri: runs:\/ffffffff\/model: run ffffffff is not in/);
    const both = await locateRun({ ...where, modelUri: uri, runId: fx.parentRunId }).catch((e: unknown) => e);
    expect((both as Error).message).toMatch(/either --model-uri or --run/);
  });
});
