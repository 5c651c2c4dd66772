/**
 * `ms serve --model-uri models:/NAME@champion` against a real `mlflow server` (started here from
 * the pinned virtualenv): it serves the aliased version's run, answers as `mlflow models serve`
 * does for the same model URI (the run's MLflow Model) and as `ms predict --model-uri`; when a
 * second run registers version 2 and moves the alias, the periodic refresh swaps the new run's
 * model in while requests keep being answered.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { startMlflowTestServer, type MlflowTestServer } from "@ms/tracking/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SMALL, finish, ms, sandbox, spawnMs, type RunDoc, type Sandbox } from "./__tests__/harness.js";

let server: MlflowTestServer | undefined;
let url = "";
let box: Sandbox;
const children: ChildProcess[] = [];

beforeAll(async () => {
  server = await startMlflowTestServer("ms-driver-serve-registry-");
  url = server.url;
  box = await sandbox("ms-driver-serve-registry-");
}, 20 * 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await server?.stop();
  await box?.dispose();
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const address = s.address();
      const port = typeof address === "object" && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function msRun(args: string[]): Promise<RunDoc> {
  const r = await ms(["run", ...args, "--tracking-uri", url, "--json"], box);
  if (r.code !== 0) throw new Error(`ms run exited ${r.code}:\n${r.stderr.slice(-3000)}`);
  return JSON.parse(r.stdout) as RunDoc;
}

async function invocations(base: string, body: string): Promise<{ status: number; predictions: number[] }> {
  const res = await fetch(`${base}/invocations`, { method: "POST", headers: { "content-type": "application/json" }, body });
  const json = (await res.json()) as { predictions?: number[] };
  return { status: res.status, predictions: json.predictions ?? [] };
}

async function servedRun(base: string): Promise<string> {
  return ((await (await fetch(`${base}/model`)).json()) as { runId: string }).runId;
}

describe("ms serve --model-uri against a real MLflow server", () => {
  const name = "movielens-serve";
  const uri = `models:/${name}@champion`;

  it(
    "serves the alias's run as mlflow models serve and ms predict answer, and follows the alias when it moves",
    async () => {
      const first = await msRun([...SMALL, "--register-model", name, "--alias", "champion"]);
      const child = spawnMs(["serve", "--port", "0", "--json", "--model-uri", uri, "--tracking-uri", url, "--refresh-seconds", "1"], box);
      children.push(child);
      const done = finish(child);
      const info = await new Promise<{ url: string; runId: string; source: string }>((resolve, reject) => {
        let out = "";
        child.stdout?.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]) as { url: string; runId: string; source: string });
        });
        void done.then((r) => reject(new Error(`ms serve exited ${r.code}:\n${r.stderr}`)));
      });
      expect(info).toMatchObject({ runId: first.runId, source: uri });

      const recs = JSON.parse(
        (await ms(["recommend", "--user", "3", "--top", "4", "--json", "--tracking-uri", url, "--model-uri", uri], box)).stdout,
      ) as {
        recommendations: { movieId: number }[];
      };
      const pairs = recs.recommendations.map((r) => [3, r.movieId]);
      const body = JSON.stringify({ dataframe_split: { columns: ["userId", "movieId"], data: pairs } });
      const ours = await invocations(info.url, body);
      expect(ours.status).toBe(200);

      // mlflow models serve on the same URI (the run's MLflow Model, numpy alone).
      const port = await freePort();
      const mlflow = spawn(
        path.join(server!.venv, "bin/mlflow"),
        ["models", "serve", "-m", uri, "--env-manager", "local", "-h", "127.0.0.1", "-p", String(port)],
        // Its local env manager runs the venv's own tools: its bin goes first on PATH.
        {
          env: { ...process.env, MLFLOW_TRACKING_URI: url, PATH: `${path.join(server!.venv, "bin")}:${process.env.PATH}` },
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      children.push(mlflow);
      let mlflowLog = "";
      mlflow.stderr?.on("data", (d: Buffer) => (mlflowLog = (mlflowLog + d.toString()).slice(-4000)));
      const theirsUrl = `http://127.0.0.1:${port}`;
      let ready = false;
      for (let i = 0; i < 600 && !ready && mlflow.exitCode === null; i++) {
        await new Promise((r) => setTimeout(r, 500));
        ready = await fetch(`${theirsUrl}/ping`).then(
          (r) => r.status === 200,
          () => false,
        );
      }
      expect(ready, mlflowLog).toBe(true);
      const theirs = await invocations(theirsUrl, body);
      mlflow.kill("SIGTERM");
      expect(theirs.status).toBe(200);
      for (const [i, p] of ours.predictions.entries()) expect(Math.abs(p - theirs.predictions[i])).toBeLessThan(1e-4);

      // A second run takes the alias; the refresh swaps its model in, with no request refused meanwhile.
      const second = await msRun([...SMALL, "-P", "keras_epochs=2", "--register-model", name, "--alias", "champion"]);
      const statuses: number[] = [];
      let swapped = false;
      for (let i = 0; i < 300 && !swapped; i++) {
        statuses.push((await invocations(info.url, body)).status);
        swapped = (await servedRun(info.url)) === second.runId;
        if (!swapped) await new Promise((r) => setTimeout(r, 100));
      }
      expect(swapped).toBe(true);
      expect(statuses.every((s) => s === 200)).toBe(true);
      const after = await invocations(info.url, body);
      const cli = JSON.parse(
        (await ms(["predict", "--pairs", await pairsFile(pairs), "--json", "--tracking-uri", url, "--model-uri", uri], box)).stdout,
      ) as { runId: string; predictions: { rating: number }[] };
      expect(cli.runId).toBe(second.runId);
      for (const [i, p] of after.predictions.entries()) expect(Math.abs(p - cli.predictions[i].rating)).toBeLessThan(1e-4);

      child.kill("SIGTERM");
      const result = await done;
      expect(result.code).toBe(0);
      expect(result.stderr).toContain("model swapped");
    },
    20 * 60_000,
  );
});

async function pairsFile(pairs: number[][]): Promise<string> {
  const { writeFile } = await import("node:fs/promises");
  const file = path.join(box.root, "serve-pairs.csv");
  await writeFile(file, `userId,movieId\n${pairs.map((p) => p.join(",")).join("\n")}\n`);
  return file;
}
