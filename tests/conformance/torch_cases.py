#!/usr/bin/env python3
"""Reference data for the PyTorch conformance test (tests/conformance/torch_conformance.cpp).

Every entry of CASES below names an ember op (a key of op_table.cpp), the PyTorch
function that defines the expected result, the input specs and the attributes.
For each case (and dtype) this script draws inputs with a seed derived from the
case name (so adding a case never changes another case's data), runs PyTorch
forward, and backward with a random cotangent, and writes everything into ONE
safetensors file plus a JSON manifest:

    <case>.in<i>   inputs            <case>.out<j>  outputs
    <case>.cot<j>  cotangents (floating outputs that carry a gradient)
    <case>.grad<i> gradient of sum(out * cot) w.r.t. each differentiable input

Adding an op case = one entry in CASES (and, for a new op, one line in op_table.cpp).

Usage: torch_cases.py --out DIR   (writes DIR/torch_cases.safetensors, DIR/torch_cases.json)
"""
import argparse
import hashlib
import json
import os
import sys
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

MANIFEST = "torch_cases.json"
DATA = "torch_cases.safetensors"

# Default tolerances, |ember - torch| <= atol + rtol * |torch|, per dtype.
DEFAULT_TOL = {"float32": (1e-5, 1e-6), "float64": (1e-10, 1e-12)}


@dataclass
class Spec:
    """One input: shape, how its values are drawn, and its dtype (None = the case's float dtype)."""
    shape: tuple
    kind: str = "normal"          # normal | uniform | int | bool | values
    dtype: Optional[str] = None   # None, "int64", "bool", "float32", "float64"
    scale: float = 1.0            # normal: loc + scale * N(0, 1)
    loc: float = 0.0
    low: float = 0.0              # uniform [low, high); int [low, high)
    high: float = 1.0
    values: Optional[list] = None  # kind "values": these numbers, reshaped to shape


def N(*shape, scale=1.0, loc=0.0):
    return Spec(tuple(shape), "normal", scale=scale, loc=loc)


def P(*shape, low=0.5, high=2.0):  # strictly positive (log, sqrt, divisors, pow bases)
    return Spec(tuple(shape), "uniform", low=low, high=high)


def I(*shape, low=0, high=2):  # int64 in [low, high)
    return Spec(tuple(shape), "int", dtype="int64", low=low, high=high)


def B(*shape):
    return Spec(tuple(shape), "bool", dtype="bool")


def V(values, shape, dtype="int64"):
    return Spec(tuple(shape), "values", dtype=dtype, values=list(values))


@dataclass
class Case:
    name: str
    op: str                      # key in op_table.cpp
    fn: Callable                 # torch reference: fn(*inputs, **attrs) -> tensor or tuple of tensors
    inputs: list
    attrs: dict = field(default_factory=dict)
    grad: Optional[list] = None  # per input: differentiable? (default: the floating ones)
    dtypes: tuple = ("float32",)
    rtol: Optional[float] = None  # float32 forward tolerance (None = DEFAULT_TOL)
    atol: Optional[float] = None
    grad_rtol: Optional[float] = None  # float32 gradient tolerance (None = the forward one)
    grad_atol: Optional[float] = None
    note: str = ""               # why a tolerance differs from the default


F32_64 = ("float32", "float64")


def _torch():
    import torch
    import torch.nn.functional as F
    return torch, F


def build_cases():
    torch, F = _torch()
    cases = []
    add = cases.append

    def dims(x, axes):  # ember: [] = all axes; torch wants an explicit tuple
        return tuple(axes) if axes else tuple(range(x.ndim))

    # ---- unary -------------------------------------------------------------------
    unary = [
        ("neg", torch.neg, N), ("abs", torch.abs, N), ("exp", torch.exp, N), ("log", torch.log, P),
        ("sqrt", torch.sqrt, P), ("rsqrt", torch.rsqrt, P), ("tanh", torch.tanh, N),
        ("sigmoid", torch.sigmoid, N), ("relu", F.relu, N), ("gelu", F.gelu, N),
        ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), N), ("silu", F.silu, N),
        ("sin", torch.sin, N), ("cos", torch.cos, N), ("erf", torch.erf, N), ("square", torch.square, N),
        ("reciprocal", torch.reciprocal, P), ("sign", torch.sign, N),
    ]
    for op, fn, spec in unary:
        add(Case(op, op, fn, [spec(3, 4, 5)], dtypes=F32_64))
    add(Case("exp_wide", "exp", torch.exp, [N(64, scale=8.0)]))
    add(Case("tanh_wide", "tanh", torch.tanh, [N(64, scale=6.0)]))
    add(Case("sigmoid_wide", "sigmoid", torch.sigmoid, [N(64, scale=12.0)]))
    add(Case("gelu_wide", "gelu", F.gelu, [N(64, scale=5.0)]))

    # ---- binary, with broadcasting -----------------------------------------------
    binary = [
        ("add", torch.add, N), ("sub", torch.sub, N), ("mul", torch.mul, N), ("div", torch.div, P),
        ("maximum", torch.maximum, N), ("minimum", torch.minimum, N),
    ]
    for op, fn, rhs in binary:
        add(Case(f"{op}_same", op, fn, [N(3, 4), rhs(3, 4)], dtypes=F32_64))
        add(Case(f"{op}_bcast", op, fn, [N(3, 1, 5), rhs(4, 1)], dtypes=F32_64))
        add(Case(f"{op}_scalar", op, fn, [N(2, 3), rhs()]))
    add(Case("pow_same", "pow", torch.pow, [P(3, 4), N(3, 4)], dtypes=F32_64))
    add(Case("pow_bcast", "pow", torch.pow, [P(2, 1, 4), N(3, 1)]))
    add(Case("pow_scalar_exp", "pow_scalar", lambda x, exponent: torch.pow(x, exponent), [P(3, 4)],
             attrs={"exponent": 2.5}, dtypes=F32_64))
    add(Case("pow_int_exp", "pow_scalar", lambda x, exponent: torch.pow(x, exponent), [N(3, 4)],
             attrs={"exponent": 3.0}))
    add(Case("add_promote_f32_i64", "add", torch.add, [N(2, 3), I(2, 3, low=-5, high=5)]))
    add(Case("mul_promote_f32_f64", "mul", torch.mul, [N(2, 3), Spec((3,), dtype="float64")]))

    # ---- where, clamp, cast ------------------------------------------------------
    add(Case("where", "where", torch.where, [B(3, 4), N(3, 4), N(3, 4)], dtypes=F32_64))
    add(Case("where_bcast", "where", torch.where, [B(3, 1), N(1, 4), N(3, 4)]))
    add(Case("clamp", "clamp", lambda x, lo, hi: torch.clamp(x, lo, hi), [N(4, 5)], attrs={"lo": -0.5, "hi": 0.7},
             dtypes=F32_64))
    add(Case("clamp_min_only", "clamp", lambda x, lo, hi: torch.clamp(x, min=lo), [N(4, 5)],
             attrs={"lo": 0.1, "hi": None}))
    add(Case("clamp_max_only", "clamp", lambda x, lo, hi: torch.clamp(x, max=hi), [N(4, 5)],
             attrs={"lo": None, "hi": -0.2}))
    tdt = {"bfloat16": torch.bfloat16, "float16": torch.float16, "int64": torch.int64, "bool": torch.bool,
           "float64": torch.float64}
    for to in ["bfloat16", "float16", "float64"]:
        add(Case(f"cast_f32_{to}", "cast", lambda x, dtype: x.to(tdt[dtype]), [N(200, scale=50.0)],
                 attrs={"dtype": to}, grad=[to == "float64"], rtol=0.0, atol=0.0, note="rounding must be exact"))
    add(Case("cast_f32_int64", "cast", lambda x, dtype: x.to(tdt[dtype]), [N(50, scale=20.0)],
             attrs={"dtype": "int64"}, rtol=0.0, atol=0.0, note="truncation toward zero"))
    add(Case("cast_f32_bool", "cast", lambda x, dtype: x.to(tdt[dtype]), [V([0, 1.5, -0.0, -2, 0], (5,), None)],
             attrs={"dtype": "bool"}))

    # ---- reductions --------------------------------------------------------------
    def red(torch_fn):
        return lambda x, axes, keepdim: torch_fn(x, dims(x, axes), keepdim)

    reducers = {
        "sum": red(lambda x, d, k: torch.sum(x, dim=d, keepdim=k)),
        "mean": red(lambda x, d, k: torch.mean(x, dim=d, keepdim=k)),
        "max": red(lambda x, d, k: torch.amax(x, dim=d, keepdim=k)),
        "min": red(lambda x, d, k: torch.amin(x, dim=d, keepdim=k)),
        "logsumexp": red(lambda x, d, k: torch.logsumexp(x, dim=d, keepdim=k)),
    }
    for op, fn in reducers.items():
        for tag, axes, keepdim in [("all", [], False), ("axis1", [1], False), ("axes02_keep", [0, 2], True),
                                   ("last", [-1], False)]:
            add(Case(f"{op}_{tag}", op, fn, [N(3, 4, 5)], attrs={"axes": axes, "keepdim": keepdim},
                     dtypes=F32_64 if tag == "axes02_keep" else ("float32",)))

    def prod(x, axes, keepdim):
        for d in sorted(dims(x, axes), reverse=True):
            x = torch.prod(x, dim=d, keepdim=True)
        return x if keepdim else x.reshape([s for i, s in enumerate(x.shape) if i not in dims(x, axes)])

    for tag, axes, keepdim in [("all", [], False), ("axis1", [1], False), ("axes02_keep", [0, 2], True)]:
        add(Case(f"prod_{tag}", "prod", prod, [P(3, 4, 5, low=0.7, high=1.4)],
                 attrs={"axes": axes, "keepdim": keepdim}))
    var = lambda x, axes, keepdim, correction: torch.var(x, dim=dims(x, axes), keepdim=keepdim, correction=correction)
    add(Case("var_axis1", "var", var, [N(3, 4, 5)], attrs={"axes": [1], "keepdim": False, "correction": 1},
             dtypes=F32_64))
    add(Case("var_axes02_pop", "var", var, [N(3, 4, 5)], attrs={"axes": [0, 2], "keepdim": True, "correction": 0}))
    add(Case("var_all", "var", var, [N(3, 4, 5, loc=3.0)], attrs={"axes": [], "keepdim": False, "correction": 1}))
    for op, fn in [("argmax", torch.argmax), ("argmin", torch.argmin)]:
        f = lambda x, axis, keepdim, fn=fn: fn(x, dim=axis, keepdim=keepdim)
        add(Case(f"{op}_axis1", op, f, [N(3, 4, 5)], attrs={"axis": 1, "keepdim": False}))
        add(Case(f"{op}_last_keep", op, f, [N(3, 4, 5)], attrs={"axis": -1, "keepdim": True}))

    # ---- views -------------------------------------------------------------------
    def slice_(x, axis, start, stop, step):
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(start, stop, step)
        return x[tuple(idx)]

    add(Case("reshape", "reshape", lambda x, shape: x.reshape(shape), [N(3, 4, 5)], attrs={"shape": [6, 10]}))
    add(Case("reshape_infer", "reshape", lambda x, shape: x.reshape(shape), [N(3, 4, 5)], attrs={"shape": [-1, 5]}))
    add(Case("permute", "permute", lambda x, dims: x.permute(dims), [N(3, 4, 5)], attrs={"dims": [2, 0, 1]}))
    add(Case("transpose", "transpose", lambda x, axis0, axis1: x.transpose(axis0, axis1), [N(3, 4, 5)],
             attrs={"axis0": 0, "axis1": 2}))
    add(Case("slice_step", "slice", slice_, [N(3, 8)], attrs={"axis": 1, "start": 1, "stop": 7, "step": 2}))
    add(Case("slice_negative", "slice", slice_, [N(6, 3)], attrs={"axis": 0, "start": -5, "stop": -1, "step": 1}))
    add(Case("slice_clipped", "slice", slice_, [N(2, 5)], attrs={"axis": -1, "start": 2, "stop": 100, "step": 3}))
    add(Case("expand", "expand", lambda x, shape: x.expand(shape), [N(3, 1, 5)], attrs={"shape": [-1, 4, -1]}))
    add(Case("expand_new_dims", "expand", lambda x, shape: x.expand(shape), [N(1, 5)], attrs={"shape": [2, 3, 5]}))
    add(Case("broadcast_to", "broadcast_to", lambda x, shape: torch.broadcast_to(x, shape), [N(4, 1)],
             attrs={"shape": [2, 4, 3]}))
    add(Case("squeeze", "squeeze", lambda x, axes: x.squeeze(tuple(axes)), [N(3, 1, 4, 1)], attrs={"axes": [1]}))
    add(Case("unsqueeze", "unsqueeze", lambda x, axis: x.unsqueeze(axis), [N(3, 4)], attrs={"axis": -1}))
    add(Case("select", "select", lambda x, axis, index: x.select(axis, index), [N(3, 4, 5)],
             attrs={"axis": 1, "index": -2}))
    add(Case("narrow", "narrow", lambda x, axis, start, length: x.narrow(axis, start, length), [N(3, 6)],
             attrs={"axis": 1, "start": 2, "length": 3}))
    add(Case("flatten", "flatten", lambda x, start, end: x.flatten(start, end), [N(2, 3, 4, 5)],
             attrs={"start": 1, "end": 2}))

    # ---- linear algebra ----------------------------------------------------------
    add(Case("matmul_2d", "matmul", torch.matmul, [N(3, 4), N(4, 5)], dtypes=F32_64))
    add(Case("matmul_batched_bcast", "matmul", torch.matmul, [N(2, 1, 3, 4), N(5, 4, 6)], dtypes=F32_64))
    add(Case("matmul_batched_2d_rhs", "matmul", torch.matmul, [N(2, 3, 4), N(4, 5)]))
    add(Case("matmul_vec_mat", "matmul", torch.matmul, [N(4), N(4, 5)]))
    add(Case("matmul_mat_vec", "matmul", torch.matmul, [N(3, 4), N(4)]))
    add(Case("matmul_large_k", "matmul", torch.matmul, [N(8, 96), N(96, 7)],
             rtol=1e-4, atol=1e-5, note="a 96-term dot product: summation order differs between BLAS libraries"))
    add(Case("linear", "linear", F.linear, [N(2, 3, 4), N(5, 4), N(5)], dtypes=F32_64))
    add(Case("linear_no_bias", "linear", F.linear, [N(6, 4), N(5, 4)]))

    # ---- nn ops ------------------------------------------------------------------
    for op, fn in [("softmax", F.softmax), ("log_softmax", F.log_softmax)]:
        f = lambda x, axis, fn=fn: fn(x, dim=axis)
        add(Case(f"{op}_last", op, f, [N(3, 4, 5)], attrs={"axis": -1}, dtypes=F32_64))
        add(Case(f"{op}_axis0", op, f, [N(3, 4, 5)], attrs={"axis": 0}))
        add(Case(f"{op}_large", op, f, [N(2, 7, scale=30.0)], attrs={"axis": -1}))
    ln = lambda x, *wb, eps: F.layer_norm(x, x.shape[-1:], *wb, eps=eps)
    add(Case("layer_norm", "layer_norm", ln, [N(2, 3, 8), N(8, loc=1.0, scale=0.2), N(8, scale=0.2)],
             attrs={"eps": 1e-5}, dtypes=F32_64, grad_rtol=1e-4, grad_atol=1e-5,
             note="gradients are differences of row sums"))
    add(Case("layer_norm_no_affine", "layer_norm", ln, [N(4, 6, loc=2.0)], attrs={"eps": 1e-5},
             grad_rtol=1e-4, grad_atol=1e-5, note="gradients are differences of row sums"))
    rms = lambda x, *w, eps: F.rms_norm(x, x.shape[-1:], *w, eps=eps)
    add(Case("rms_norm", "rms_norm", rms, [N(2, 3, 8), N(8, loc=1.0, scale=0.2)], attrs={"eps": 1e-6},
             dtypes=F32_64, grad_rtol=1e-4, grad_atol=1e-5, note="gradients are differences of row sums"))
    add(Case("rms_norm_no_weight", "rms_norm", rms, [N(4, 6)], attrs={"eps": 1e-6}, grad_rtol=1e-4, grad_atol=1e-5))

    def ce(logits, targets, ignore_index, reduction):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=ignore_index, reduction=reduction).reshape(
            targets.shape if reduction == "none" else ())

    targets = V([3, -100, 0, 4, -100, 1], (6,))
    for red_ in ["mean", "sum", "none"]:
        add(Case(f"cross_entropy_{red_}", "cross_entropy", ce, [N(6, 5, scale=2.0), targets],
                 attrs={"ignore_index": -100, "reduction": red_}, dtypes=F32_64))
    add(Case("cross_entropy_3d", "cross_entropy", ce, [N(2, 3, 7), I(2, 3, high=7)],
             attrs={"ignore_index": -100, "reduction": "mean"}))
    add(Case("cross_entropy_ignore_0", "cross_entropy", ce, [N(4, 3), V([0, 2, 0, 1], (4,))],
             attrs={"ignore_index": 0, "reduction": "mean"}))

    def sdpa(q, k, v, causal, scale):
        rep = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        T, S = q.shape[-2], k.shape[-2]
        # ember aligns the last query with the last key (KV-cache decoding); torch's
        # is_causal aligns the first ones, so pass the bottom-right mask explicitly.
        mask = torch.ones(T, S, dtype=torch.bool).tril(S - T) if causal else None
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale or None)

    att = {"causal": True, "scale": 0.0}
    add(Case("sdpa_causal", "scaled_dot_product_attention", sdpa, [N(2, 2, 5, 4), N(2, 2, 5, 4), N(2, 2, 5, 4)],
             attrs=att, dtypes=F32_64))
    add(Case("sdpa_full", "scaled_dot_product_attention", sdpa, [N(2, 2, 5, 4), N(2, 2, 6, 4), N(2, 2, 6, 4)],
             attrs={"causal": False, "scale": 0.3}))
    add(Case("sdpa_gqa_causal", "scaled_dot_product_attention", sdpa,
             [N(2, 4, 5, 4), N(2, 2, 5, 4), N(2, 2, 5, 4)], attrs=att))
    add(Case("sdpa_causal_kv_longer", "scaled_dot_product_attention", sdpa,
             [N(1, 2, 3, 4), N(1, 2, 6, 4), N(1, 2, 6, 4)], attrs=att))
    add(Case("dropout_p0", "dropout", lambda x, p, training: F.dropout(x, p, training), [N(3, 4)],
             attrs={"p": 0.0, "training": True}))

    # ---- joining, indexing, sorting, scanning --------------------------------------
    add(Case("concat_axis1", "concat", lambda *xs, axis: torch.cat(xs, axis), [N(2, 3), N(2, 1), N(2, 4)],
             attrs={"axis": 1}))
    add(Case("concat_axis0", "concat", lambda *xs, axis: torch.cat(xs, axis), [N(1, 3), N(2, 3)], attrs={"axis": 0}))
    add(Case("stack", "stack", lambda *xs, axis: torch.stack(xs, axis), [N(2, 3), N(2, 3), N(2, 3)],
             attrs={"axis": 1}))
    add(Case("split", "split", lambda x, sizes, axis: torch.split(x, sizes, axis), [N(5, 4)],
             attrs={"sizes": [2, 3], "axis": 0}))
    add(Case("split_last", "split", lambda x, sizes, axis: torch.split(x, sizes, axis), [N(2, 6)],
             attrs={"sizes": [1, 4, 1], "axis": -1}))
    add(Case("chunk_even", "chunk", lambda x, chunks, axis: torch.chunk(x, chunks, axis), [N(6, 2)],
             attrs={"chunks": 3, "axis": 0}))
    add(Case("chunk_uneven", "chunk", lambda x, chunks, axis: torch.chunk(x, chunks, axis), [N(7, 2)],
             attrs={"chunks": 3, "axis": 0}))
    add(Case("embedding", "embedding", lambda w, ids: F.embedding(ids, w), [N(10, 4), I(2, 3, high=10)]))
    add(Case("embedding_repeated", "embedding", lambda w, ids: F.embedding(ids, w), [N(5, 3), V([1, 1, 4, 1], (4,))]))
    add(Case("gather_axis1", "gather", lambda x, idx, axis: torch.gather(x, axis, idx), [N(3, 5), I(3, 4, high=5)],
             attrs={"axis": 1}))
    add(Case("gather_axis0", "gather", lambda x, idx, axis: torch.gather(x, axis, idx), [N(4, 3), I(6, 3, high=4)],
             attrs={"axis": 0}))
    add(Case("index_select", "index_select", lambda x, idx, axis: torch.index_select(x, axis, idx),
             [N(5, 3), V([4, 0, 2, 2], (4,))], attrs={"axis": 0}))
    add(Case("index_select_axis1", "index_select", lambda x, idx, axis: torch.index_select(x, axis, idx),
             [N(2, 5, 3), V([1, 3], (2,))], attrs={"axis": 1}))
    add(Case("scatter_add", "scatter_add", lambda x, idx, src, axis: torch.scatter_add(x, axis, idx, src),
             [N(3, 5), I(3, 4, high=5), N(3, 4)], attrs={"axis": 1}))
    add(Case("cumsum_axis1", "cumsum", lambda x, axis: torch.cumsum(x, axis), [N(3, 6)], attrs={"axis": 1},
             dtypes=F32_64))
    add(Case("cumsum_axis0", "cumsum", lambda x, axis: torch.cumsum(x, axis), [N(5, 2, 3)], attrs={"axis": 0}))
    add(Case("tril", "tril", lambda x, k: torch.tril(x, k), [N(4, 5)], attrs={"k": 0}))
    add(Case("tril_batched_neg", "tril", lambda x, k: torch.tril(x, k), [N(2, 3, 3)], attrs={"k": -1}))
    add(Case("triu", "triu", lambda x, k: torch.triu(x, k), [N(4, 5)], attrs={"k": 1}))
    topk = lambda x, k, axis, largest: tuple(torch.topk(x, k, axis, largest))
    add(Case("topk_largest", "topk", topk, [N(3, 8)], attrs={"k": 3, "axis": -1, "largest": True}))
    add(Case("topk_smallest_axis0", "topk", topk, [N(6, 4)], attrs={"k": 2, "axis": 0, "largest": False}))
    sort = lambda x, axis, descending: tuple(torch.sort(x, dim=axis, descending=descending, stable=True))
    add(Case("sort_asc", "sort", sort, [N(3, 7)], attrs={"axis": -1, "descending": False}))
    add(Case("sort_desc_axis0", "sort", sort, [N(5, 3)], attrs={"axis": 0, "descending": True}))
    add(Case("argsort", "argsort", lambda x, axis, descending: torch.argsort(x, dim=axis, descending=descending,
                                                                             stable=True),
             [N(4, 6)], attrs={"axis": -1, "descending": False}))

    # ---- composites: a transformer block and an AdamW trajectory ------------------
    C, H = 16, 2

    def gpt_block(x, ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b,
                  n_head, eps):
        Bn, T, Cn = x.shape
        q, k, v = F.linear(F.layer_norm(x, (Cn,), ln1_w, ln1_b, eps), qkv_w, qkv_b).split(Cn, dim=2)
        heads = lambda t: t.reshape(Bn, T, n_head, Cn // n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
        x = x + F.linear(y.transpose(1, 2).reshape(Bn, T, Cn), proj_w, proj_b)
        h = F.gelu(F.linear(F.layer_norm(x, (Cn,), ln2_w, ln2_b, eps), fc_w, fc_b), approximate="tanh")
        return x + F.linear(h, out_w, out_b)

    w = lambda *s: N(*s, scale=0.25)
    add(Case("gpt_block", "gpt_block", gpt_block,
             [N(2, 6, C), N(C, loc=1.0, scale=0.1), w(C), w(3 * C, C), w(3 * C), w(C, C), w(C),
              N(C, loc=1.0, scale=0.1), w(C), w(4 * C, C), w(4 * C), w(C, 4 * C), w(C)],
             attrs={"n_head": H, "eps": 1e-5}, dtypes=F32_64, rtol=1e-4, atol=1e-5,
             note="a whole block: layer norms, three GEMM chains and attention compound rounding"))

    def adamw(p0, a, target, lr, beta1, beta2, eps, weight_decay, steps):
        p = p0.detach().clone().requires_grad_(True)
        opt = torch.optim.AdamW([p], lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
        trajectory = []
        for _ in range(steps):
            opt.zero_grad()
            (0.5 * (a * (p - target) ** 2).sum()).backward()
            opt.step()
            trajectory.append(p.detach().clone())
        return torch.stack(trajectory)

    add(Case("adamw_trajectory", "adamw_trajectory", adamw, [N(3, 4), P(3, 4), N(3, 4)],
             attrs={"lr": 0.05, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1, "steps": 5},
             grad=[False, False, False], dtypes=F32_64))
    return cases


# ---------------------------------------------------------------------------------
def make_input(spec, rng, float_dtype):
    import numpy as np
    dtype = spec.dtype or float_dtype
    if spec.kind == "normal":
        a = spec.loc + spec.scale * rng.standard_normal(spec.shape)
    elif spec.kind == "uniform":
        a = rng.uniform(spec.low, spec.high, spec.shape)
    elif spec.kind == "int":
        a = rng.integers(int(spec.low), int(spec.high), spec.shape)
    elif spec.kind == "bool":
        a = rng.random(spec.shape) < 0.5
    elif spec.kind == "values":
        a = np.array(spec.values).reshape(spec.shape)
    else:
        raise ValueError(f"unknown input kind {spec.kind!r}")
    return c_array(np.asarray(a).astype(dtype))


def c_array(a):
    """A C-contiguous copy that keeps 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    import numpy as np
    return np.array(a, order="C", copy=True)


def dtype_name(t):
    return str(t.dtype).replace("torch.", "")


def run_case(case, dtype, key, tensors_out):
    import numpy as np
    import torch
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    arrays = [make_input(s, rng, dtype) for s in case.inputs]
    inputs = [torch.from_numpy(a.copy()) for a in arrays]
    diff = case.grad if case.grad is not None else [t.is_floating_point() for t in inputs]
    if len(diff) != len(inputs):
        raise ValueError(f"{key}: grad has {len(diff)} entries for {len(inputs)} inputs")
    for t, d in zip(inputs, diff):
        if d:
            t.requires_grad_(True)
    with torch.enable_grad():
        out = case.fn(*inputs, **case.attrs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for i, a in enumerate(arrays):
        tensors_out[f"{key}.in{i}"] = a
    for j, o in enumerate(outs):
        o = o.detach()
        # numpy has no bfloat16: 16-bit floats are stored as float32 (exact) and the
        # manifest keeps the real dtype, which the C++ side checks.
        tensors_out[f"{key}.out{j}"] = c_array((o.float() if o.dtype == torch.bfloat16 else o).numpy())
    cot_idx = [j for j, o in enumerate(outs) if o.requires_grad and o.is_floating_point()]
    diff_idx = [i for i, d in enumerate(diff) if d]
    if cot_idx and diff_idx:
        cots = []
        for j in cot_idx:
            c = torch.from_numpy(rng.standard_normal(tuple(outs[j].shape))).to(outs[j].dtype)
            tensors_out[f"{key}.cot{j}"] = c_array((c.float() if c.dtype == torch.bfloat16 else c).numpy())
            cots.append(c)
        grads = torch.autograd.grad([outs[j] for j in cot_idx], [inputs[i] for i in diff_idx], cots,
                                    allow_unused=True)
        for i, g in zip(diff_idx, grads):
            g = torch.zeros_like(inputs[i]) if g is None else g
            tensors_out[f"{key}.grad{i}"] = c_array(g.detach().numpy())
    else:
        cot_idx, diff_idx = [], []
    if dtype == "float32":
        rtol = case.rtol if case.rtol is not None else DEFAULT_TOL[dtype][0]
        atol = case.atol if case.atol is not None else DEFAULT_TOL[dtype][1]
        grtol = case.grad_rtol if case.grad_rtol is not None else rtol
        gatol = case.grad_atol if case.grad_atol is not None else atol
    else:
        rtol, atol = DEFAULT_TOL[dtype]
        grtol, gatol = rtol, atol
    return {
        "name": key, "op": case.op, "attrs": case.attrs, "dtype": dtype,
        "num_inputs": len(inputs), "num_outputs": len(outs),
        "out_dtypes": [dtype_name(o) for o in outs],
        "differentiable": diff_idx, "cotangents": cot_idx,
        "rtol": rtol, "atol": atol, "grad_rtol": grtol, "grad_atol": gatol, "note": case.note,
    }


def generator_key():
    """Identifies this script's content and interpreter: unchanged means the data is up to date."""
    with open(__file__, "rb") as f:
        h = hashlib.sha256(f.read())
    h.update(sys.executable.encode())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="directory for torch_cases.safetensors and torch_cases.json")
    ap.add_argument("--force", action="store_true", help="regenerate even when up to date")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest_path, data_path = os.path.join(args.out, MANIFEST), os.path.join(args.out, DATA)
    gen_key = generator_key()
    if not args.force and os.path.exists(data_path) and os.path.exists(manifest_path):
        try:
            with open(manifest_path) as f:
                if json.load(f).get("generator_key") == gen_key:
                    print(f"torch_cases: {manifest_path} is up to date")
                    return 0
        except (OSError, ValueError):
            pass

    import numpy as np
    import torch
    from safetensors.numpy import save_file
    torch.manual_seed(0)
    torch.set_num_threads(1)  # deterministic reductions, and ctest runs tests in parallel
    tensors, entries, seen = {}, [], set()
    for case in build_cases():
        for dtype in case.dtypes:
            key = case.name if dtype == "float32" else f"{case.name}_{dtype.replace('float', 'f')}"
            if key in seen:
                raise ValueError(f"duplicate case name {key!r}")
            seen.add(key)
            entries.append(run_case(case, dtype, key, tensors))
    tmp = data_path + ".tmp"
    save_file(tensors, tmp, metadata={"producer": "tests/conformance/torch_cases.py"})
    os.replace(tmp, data_path)
    manifest = {"generator_key": gen_key, "torch_version": torch.__version__, "numpy_version": np.__version__,
                "data": DATA, "cases": entries}
    with open(manifest_path + ".tmp", "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(manifest_path + ".tmp", manifest_path)
    print(f"torch_cases: {len(entries)} cases, {len(tensors)} tensors -> {data_path} (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
