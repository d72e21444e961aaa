#!/usr/bin/env python3
"""safetensors conformance: ember's files against the official `safetensors` package, both ways.

  ember-to-python: the ember tool (safetensors_roundtrip write) saves a file; the official
                   package loads it (torch, for bfloat16) and every dtype, shape, value and the
                   metadata are checked exactly.
  python-to-ember: safetensors.torch.save_file writes the same tensors with metadata; the
                   ember tool (safetensors_roundtrip read) loads and checks them.

The expected values come from the formulas in value() below, which safetensors_roundtrip.cpp
repeats; keep the two in sync.

Usage: safetensors_peer.py [both|ember-to-python|python-to-ember] --tool PATH --dir DIR
(both, the default, runs the two in one process: importing torch is most of the time).
"""
import argparse
import os
import subprocess
import sys

# name -> (torch dtype name, shape); the same list as expected_tensors() in safetensors_roundtrip.cpp.
TENSORS = {
    "f32": ("float32", (2, 3, 4)), "f64": ("float64", (5,)), "bf16": ("bfloat16", (3, 2)),
    "f16": ("float16", (4,)), "i32": ("int32", (2, 2)), "i64": ("int64", (3,)), "u8": ("uint8", (6,)),
    "bool": ("bool", (2, 3)), "scalar": ("float32", ()), "empty": ("float32", (0, 3)), "f32_t": ("float32", (4, 3)),
}


def value(dtype, i):
    if dtype in ("float32", "float64"):
        return ((i * 7) % 11 - 5) / 3.0
    if dtype in ("bfloat16", "float16"):
        return ((i * 7) % 11 - 5) * 0.25
    if dtype == "int32":
        return i * 1000003 - 5
    if dtype == "int64":
        return i * 3000000000 - 7
    if dtype == "uint8":
        return (i * 37) % 256
    if dtype == "bool":
        return i % 3 == 0
    raise ValueError(dtype)


def expected():
    import numpy as np
    import torch
    out = {}
    for name, (dtype, shape) in TENSORS.items():
        if name == "f32_t":  # transpose of a [3, 4] tensor
            base = np.array([value(dtype, i) for i in range(12)], dtype=np.float64).astype(np.float32)
            out[name] = torch.from_numpy(base.reshape(3, 4).T.copy())
            continue
        n = int(np.prod(shape)) if shape else 1
        vals = [value(dtype, i) for i in range(n)]
        # Round through float64 -> float32 like ember's tensor(double values, ...).
        t = torch.tensor(vals, dtype=torch.float64 if dtype not in ("int64", "int32", "uint8", "bool")
                         else getattr(torch, dtype))
        out[name] = t.to(getattr(torch, dtype)).reshape(shape)
    return out


def ember_to_python(tool, d):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    path = os.path.join(d, "from_ember.safetensors")
    subprocess.run([tool, "write", path], check=True)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    errors = []
    if meta != {"format": "pt", "producer": "ember"}:
        errors.append(f"metadata {meta!r}")
    if keys != set(TENSORS):
        errors.append(f"tensor names {sorted(keys)} != {sorted(TENSORS)}")
    got = load_file(path)
    for name, want in expected().items():
        t = got.get(name)
        if t is None:
            continue
        if t.dtype != want.dtype or tuple(t.shape) != tuple(want.shape):
            errors.append(f"{name}: {t.dtype} {tuple(t.shape)}, expected {want.dtype} {tuple(want.shape)}")
        elif not torch.equal(t, want):
            errors.append(f"{name}: values {t.flatten().tolist()} != {want.flatten().tolist()}")
    # The numpy reader must agree too, for every dtype numpy has (numpy has no bfloat16).
    with safe_open(path, framework="np") as f:
        for name, want in expected().items():
            if want.dtype == torch.bfloat16 or name not in keys:
                continue
            a = f.get_tensor(name)
            if str(a.dtype) != str(want.dtype).replace("torch.", "") or not (a == want.numpy()).all():
                errors.append(f"{name}: numpy reader gives {a.dtype} {a.tolist()}")
    return errors


def python_to_ember(tool, d):
    from safetensors.torch import save_file
    path = os.path.join(d, "from_python.safetensors")
    save_file(expected(), path, metadata={"format": "pt", "producer": "safetensors-python"})
    r = subprocess.run([tool, "read", path, "safetensors-python"])
    return [] if r.returncode == 0 else [f"ember's reader rejected the file (exit {r.returncode})"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("direction", nargs="?", default="both", choices=["both", "ember-to-python", "python-to-ember"])
    ap.add_argument("--tool", required=True, help="path of the safetensors_roundtrip binary")
    ap.add_argument("--dir", required=True, help="scratch directory")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    checks = {"ember-to-python": ember_to_python, "python-to-ember": python_to_ember}
    failed = 0
    for direction, check in checks.items():
        if args.direction not in ("both", direction):
            continue
        errors = check(args.tool, args.dir)
        for e in errors:
            print(f"safetensors {direction}: {e}", file=sys.stderr)
        print(f"safetensors {direction}: {'FAILED' if errors else 'ok'} ({len(TENSORS)} tensors)")
        failed += bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
