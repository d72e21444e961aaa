"""Reading a run folder's metrics.jsonl in the pretraining shell tests."""
import json


def records(work, run, kind):
    """The records of one kind ("train", "eval") of run folder work/run, in order."""
    with open(f"{work}/{run}/metrics.jsonl") as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]


def rel(a, b, key="loss"):
    """The largest relative difference of `key` over two runs' records, step by step."""
    return max(abs(x[key] - y[key]) / abs(x[key]) for x, y in zip(a, b))
