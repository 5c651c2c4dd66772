/**
 * Choosing the store from a tracking URI, as MLflow does.
 */
import path from "node:path";
import { BadParameterError } from "@ms/contracts";
import { describe, expect, it } from "vitest";
import { createTracker, resolveTrackingUri } from "./tracker.js";

describe("resolveTrackingUri", () => {
  const cwd = "/work/here";
  it("defaults to ./mlruns, or MLFLOW_TRACKING_URI", () => {
    expect(resolveTrackingUri(undefined, { env: {}, cwd })).toEqual({ kind: "file", root: path.join(cwd, "mlruns") });
    expect(resolveTrackingUri(undefined, { env: { MLFLOW_TRACKING_URI: "http://h:5000" }, cwd })).toEqual({
      kind: "rest",
      url: "http://h:5000",
    });
    expect(resolveTrackingUri("other", { env: { MLFLOW_TRACKING_URI: "http://h:5000" }, cwd })).toEqual({
      kind: "file",
      root: path.join(cwd, "other"),
    });
  });
  it("reads paths and file: URIs, relative or absolute", () => {
    expect(resolveTrackingUri("file:./runs", { env: {}, cwd })).toEqual({ kind: "file", root: path.join(cwd, "runs") });
    expect(resolveTrackingUri("file:///tmp/my%20runs", { env: {}, cwd })).toEqual({ kind: "file", root: "/tmp/my runs" });
    expect(resolveTrackingUri("/abs/runs", { env: {}, cwd })).toEqual({ kind: "file", root: "/abs/runs" });
    expect(resolveTrackingUri("https://mlflow.example.com/prefix", { env: {}, cwd })).toEqual({
      kind: "rest",
      url: "https://mlflow.example.com/prefix",
    });
  });
  it("refuses schemes it cannot serve", () => {
    expect(() => resolveTrackingUri("databricks", { env: {}, cwd })).toThrow(BadParameterError);
    expect(() => resolveTrackingUri("sqlite:///x.db", { env: {}, cwd })).toThrow(/not supported/);
  });
  it("never shows credentials embedded in the URI", () => {
    const t = createTracker("https://alice:s3cr3t-pw@mlflow.example.com/", { env: {} });
    expect(t.kind).toBe("rest");
    expect(t.uri).toBe("https://mlflow.example.com");
    expect(() => createTracker("http://h", { env: { MS_TRACKING_RETRY_TIMEOUT_MS: "soon" } })).toThrow(/MS_TRACKING_RETRY_TIMEOUT_MS/);
  });
});
