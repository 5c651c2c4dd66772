/**
 * No module of this package imports a module that (transitively) imports it back: kernel.ts and
 * wasm.ts used to, through the `Accumulate` type; their shared types now live in kernel-types.ts.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

function importGraph(src: string): Map<string, string[]> {
  const files = readdirSync(src, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
  const graph = new Map<string, string[]>();
  for (const rel of files) {
    const text = readFileSync(path.join(src, rel), "utf8");
    const deps = [...text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) => path.normalize(path.join(path.dirname(rel), m[1].replace(/\.js$/, ".ts"))));
    graph.set(path.normalize(rel), deps);
  }
  return graph;
}

function onCycle(graph: Map<string, string[]>): string[] {
  return [...graph.keys()].filter((start) => {
    const seen = new Set<string>();
    const stack = [...(graph.get(start) ?? [])];
    while (stack.length > 0) {
      const next = stack.pop() as string;
      if (next === start) return true;
      if (seen.has(next)) continue;
      seen.add(next);
      stack.push(...(graph.get(next) ?? []));
    }
    return false;
  });
}

describe("imports", () => {
  it("form no cycle", () => {
    const graph = importGraph(__dirname);
    expect(graph.get("kernel.ts")).toContain("wasm.ts");
    expect(onCycle(graph)).toEqual([]);
  });
});
