"""Test support for @ms/tracking: prints, as JSON, an experiment and every run in it as MLflow's
own Python client reads them (info, params, tags, latest metrics, full metric history, artifact
files), so the TypeScript tests can compare field by field.

Usage: python mlflow_read.py TRACKING_URI EXPERIMENT_NAME
"""
import json
import math
import sys
import warnings

warnings.filterwarnings("ignore")

from mlflow import MlflowClient  # noqa: E402


def num(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def artifacts(client, run_id, path=None):
    out = []
    for f in client.list_artifacts(run_id, path):
        if f.is_dir:
            out.extend(artifacts(client, run_id, f.path))
        else:
            out.append({"path": f.path, "size": f.file_size})
    return out


def main():
    uri, name = sys.argv[1], sys.argv[2]
    client = MlflowClient(tracking_uri=uri)
    exp = next((e for e in client.search_experiments() if e.name == name), None)
    result = {"experiment": None, "runs": []}
    if exp is not None:
        result["experiment"] = {"experiment_id": exp.experiment_id, "name": exp.name, "lifecycle_stage": exp.lifecycle_stage}
        for run in client.search_runs([exp.experiment_id], max_results=1000):
            i = run.info
            history = {}
            for key in run.data.metrics:
                history[key] = [
                    {"value": num(m.value), "step": m.step, "timestamp": m.timestamp}
                    for m in client.get_metric_history(i.run_id, key)
                ]
            result["runs"].append({
                "info": {
                    "run_id": i.run_id, "run_name": i.run_name, "experiment_id": i.experiment_id,
                    "status": i.status, "start_time": i.start_time, "end_time": i.end_time,
                    "artifact_uri": i.artifact_uri, "user_id": i.user_id,
                },
                "params": run.data.params,
                "tags": run.data.tags,
                "metrics": {k: num(v) for k, v in run.data.metrics.items()},
                "history": history,
                "artifacts": artifacts(client, i.run_id),
            })
    print(json.dumps(result))


main()
