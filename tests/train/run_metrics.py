"""Reading a run folder's metrics.jsonl in the pretraining shell tests."""
import json


def records(work, run, kind):
    """The records of one kind ("train", "eval") of run folder work/run, in order."""
    with open(f"{work}/{run}/metrics.jsonl") as f:
        return [r for r in map(json.loads, f) if r["kind"] == kind]


def rel(a, b, key="loss"):
    """The largest relative difference of `key` over two runs' records, step by step."""
    return max(abs(x[key] - y[key]) / abs(x[key]) for x, y in zip(a, b))


def assert_parallel_matches(work, one, par, steps, tol, what):
    """A parallel run `par` against the one-process run `one`: the same number of
    train records, losses and gradient norms within `tol` relative step by step,
    the final validation loss within `tol`, and a sample in its last evaluation.
    Returns the (loss, grad norm, val loss) differences."""
    a, b = records(work, one, "train"), records(work, par, "train")
    assert len(a) == len(b) == steps, (len(a), len(b))
    d, dn = rel(a, b), rel(a, b, "grad_norm")
    assert d < tol and dn < tol, f"{what} differs from 1 process: loss {d:.2e}, grad norm {dn:.2e}"
    e1, e2 = records(work, one, "eval")[-1], records(work, par, "eval")[-1]
    de = abs(e1["val_loss"] - e2["val_loss"]) / e1["val_loss"]
    assert de < tol, (e1, e2)
    assert e2.get("sample"), f"no sample under {what}"
    return d, dn, de
