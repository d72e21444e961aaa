"""`ember bench generate` against llama.cpp's llama-bench on the same GPT-2 model, in the same run.

Batch-1 inference speed, prefill (a prompt into an empty cache) and decode
(one token a step), of an ember preset (`small` or `gpt2`, random weights)
and of the same architecture and shapes as a GGUF file run by llama.cpp, for
each weight format:

    ember --quant   llama.cpp GGUF        what is in that format
    none            F32                   everything float32
    f16             F16                   every matrix (the tied embedding/head too)
    int8            Q8_0                  every matrix; ember: one scale a row,
                                          Q8_0: one f16 scale per 32 weights
    int4            Q4_0                  every matrix; ember: one scale per 64
                                          weights (--group-size 64, the default),
                                          Q4_0: one f16 scale per 32 weights

Both sides keep norms, biases and the position table in float32; ember keeps
a float32 copy of the token table for the lookup (a few rows a step, which
costs nothing next to the head). The quantized GGUFs are made with
`llama-quantize --pure`, so that the tied embedding (llama.cpp's output
matrix) is in the same format as the rest, as ember's head is; without
--pure llama-quantize would keep it in Q6_K for Q4_0.

What each side times, matched here:
  prefill  --prompt-len tokens at positions 0.. into an empty cache, logits
           of the last token only (llama-bench -p N -n 0).
  decode   --tokens single-token steps with full logits, starting at the
           position `ember bench generate` starts at: after the prompt, moved
           back so that the steps fit in the context (small, context 256:
           positions 128..255; gpt2: 256..383); llama-bench -p 0 -n T -d D
           (-d fills the cache to depth D untimed).
Both report the median of --runs timed runs after one warm-up run. llama-bench
keeps its defaults otherwise (f16 KV cache, flash attention auto, weight
repacking on, mmap); --llama-extra passes more flags (e.g. "-ctk f32 -ctv f32").

The GGUFs are written here, not converted from a Hugging Face checkpoint:
random weights (speed does not depend on them) through the gguf-py package
that llama.cpp vendors, with a real byte-level BPE vocabulary rebuilt from
tiktoken's gpt2 ranks (gpt2: all 50,257 tokens; small: the first 16,384 ranks,
i.e. the 256 bytes and the first 16,128 merges), since llama.cpp will not
load a "gpt2" vocabulary without merges. They are cached in --models-dir.
(Checked once, at llama.cpp 0c1e570: the vocabulary, merges, token types,
pre-tokenizer and hyperparameter keys equal what convert_hf_to_gguf.py writes
for a Hugging Face GPT2LMHeadModel with this tokenizer, and the tensor names
and shapes match.)
Every round runs, for each format, ember and llama.cpp one after the other
(which goes first alternates between rounds), so that both see the same
machine; the line gives per side the median over rounds and every round's
value, and ember / llama.cpp ratios (> 1: ember faster). It times a private
copy of the ember binary (a shared build/ember may be rebuilt mid-run), and
records how many cores other processes kept busy during each measurement
(other_cores_busy*): on a shared 2-core host a busy neighbour slows both
sides' spinning thread pools many times over, so such rounds are not
comparable.

Build llama.cpp once with bench/llamacpp_setup.sh, then:

    /root/.cache/ember/peers-venv/bin/python bench/llamacpp_vs_ember.py \
        --ember build/ember --preset small --rounds 3
"""
import argparse
import atexit
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CACHE = os.path.expanduser("~/.cache/ember")

# The presets of ember/models/gpt_config.cpp (GPT-2 style: layernorm eps 1e-5,
# learned positions, GELU tanh, biases, tied embeddings, MLP 4 * n_embd).
# main() checks the parameter count against ember's own.
PRESETS = {
    "small": dict(n_layer=6, n_head=6, n_embd=384, vocab=16384, block=256),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, vocab=50257, block=1024),
}

# ember --quant -> (GGUF name, llama-quantize type; None: the float32 file itself)
FORMATS = [("none", "F32", None), ("f16", "F16", "F16"), ("int8", "Q8_0", "Q8_0"), ("int4", "Q4_0", "Q4_0")]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --- the vocabulary ----------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's byte-level alphabet: printable bytes stand for themselves, the
    others are moved to U+0100.. so that every token is a printable string (the
    form Hugging Face's vocab.json and llama.cpp's "gpt2" vocabularies use)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def merge_pair(ranks, token, rank):
    """The two tokens whose merge made `token`: byte-pair encoding of its bytes
    with only the merges learnt before it (ranks < rank) stops at two parts."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < rank and (best is None or r < best[1]):
                best = (i, r)
        if best is None:
            break
        i = best[0]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    if len(parts) != 2:
        raise ValueError(f"token {token!r} (rank {rank}) is not a merge of two earlier tokens")
    return parts


def gpt2_vocab(tiktoken_file, vocab_size):
    """(tokens, token types, merges) of the first vocab_size ids of the gpt2
    encoding: its ranks in order, then <|endoftext|> (id 50256) if it fits."""
    ranks = {}
    with open(tiktoken_file) as f:
        for line in f:
            if line.strip():
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    by_rank = sorted(ranks, key=ranks.get)
    if [ranks[t] for t in by_rank] != list(range(len(by_rank))):
        raise ValueError(f"{tiktoken_file}: ranks are not 0..{len(by_rank) - 1}")
    n = min(vocab_size, len(by_rank))
    b2u = bytes_to_unicode()
    text = lambda b: "".join(b2u[x] for x in b)
    tokens = [text(t) for t in by_rank[:n]]
    types = [1] * n  # gguf.TokenType.NORMAL
    merges = []
    for rank, tok in enumerate(by_rank[:n]):
        if len(tok) > 1:
            a, b = merge_pair(ranks, tok, rank)
            merges.append(f"{text(a)} {text(b)}")
    if vocab_size == n + 1:
        tokens.append("<|endoftext|>")
        types.append(3)  # gguf.TokenType.CONTROL
    if len(tokens) != vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is more than the gpt2 encoding's {len(by_rank) + 1} tokens")
    return tokens, types, merges


# --- the GGUFs ---------------------------------------------------------------

def write_f32_gguf(path, preset, cfg, tiktoken_file, gguf_py):
    """A float32 GGUF of architecture "gpt2" with cfg's shapes and random
    weights. Tensor names and layouts are llama.cpp's for GPT-2 (numpy shapes
    are [out, in], as ember stores its Linear weights); no output.weight, so
    llama.cpp ties the head to token_embd, as ember does."""
    sys.path.insert(0, gguf_py)
    import gguf
    import numpy as np

    L, C, V, T = cfg["n_layer"], cfg["n_embd"], cfg["vocab"], cfg["block"]
    F = 4 * C
    rng = np.random.default_rng(1234)
    normal = lambda *shape: (rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02))
    tensors = {"token_embd.weight": normal(V, C), "position_embd.weight": normal(T, C)}
    for l in range(L):
        p = f"blk.{l}."
        tensors.update({
            p + "attn_norm.weight": np.ones(C, np.float32), p + "attn_norm.bias": np.zeros(C, np.float32),
            p + "attn_qkv.weight": normal(3 * C, C), p + "attn_qkv.bias": np.zeros(3 * C, np.float32),
            p + "attn_output.weight": normal(C, C), p + "attn_output.bias": np.zeros(C, np.float32),
            p + "ffn_norm.weight": np.ones(C, np.float32), p + "ffn_norm.bias": np.zeros(C, np.float32),
            p + "ffn_up.weight": normal(F, C), p + "ffn_up.bias": np.zeros(F, np.float32),
            p + "ffn_down.weight": normal(C, F), p + "ffn_down.bias": np.zeros(C, np.float32),
        })
    tensors["output_norm.weight"] = np.ones(C, np.float32)
    tensors["output_norm.bias"] = np.zeros(C, np.float32)

    tokens, types, merges = gpt2_vocab(tiktoken_file, V)
    tmp = path + ".tmp"
    w = gguf.GGUFWriter(tmp, "gpt2")
    w.add_name(f"ember-{preset}-random")
    w.add_context_length(T)
    w.add_embedding_length(C)
    w.add_feed_forward_length(F)
    w.add_block_count(L)
    w.add_head_count(cfg["n_head"])
    w.add_layer_norm_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")  # GPT-2's pre-tokenizer regex
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if V > 50256:  # <|endoftext|>, as Hugging Face's gpt2 has it; no BOS is added
        w.add_bos_token_id(50256)
        w.add_eos_token_id(50256)
    w.add_add_bos_token(False)
    for name, t in tensors.items():
        w.add_tensor(name, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, path)
    return sum(t.size for t in tensors.values())


def prepare_models(a, cfg):
    """The four GGUFs of the preset in --models-dir, made only when absent."""
    os.makedirs(a.models_dir, exist_ok=True)
    paths = {}
    f32 = os.path.join(a.models_dir, f"{a.preset}-f32.gguf")
    if not os.path.exists(f32):
        log(f"writing {f32}")
        write_f32_gguf(f32, a.preset, cfg, a.tiktoken, a.gguf_py)
    for quant, name, qtype in FORMATS:
        path = f32 if qtype is None else os.path.join(a.models_dir, f"{a.preset}-{name.lower()}.gguf")
        if not os.path.exists(path):
            log(f"writing {path}")
            # --pure: every matrix in this type (see the header); nice: a shared host.
            subprocess.run(["nice", "-n", "19", a.llama_quantize, "--pure", f32, path + ".tmp", qtype, str(a.threads)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.replace(path + ".tmp", path)
        paths[quant] = path
    return paths


# --- the two benchmarks ------------------------------------------------------

def run_ember(a, quant):
    cmd = [a.ember, "bench", "generate", "--preset", a.preset, "--quant", quant, "--prompt-len", str(a.prompt_len),
           "--tokens", str(a.tokens), "--runs", str(a.runs), "--threads", str(a.threads)]
    out = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS=str(a.threads)), check=True, capture_output=True,
                         text=True)
    return [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")][-1]


def run_llama(a, model, n_prompt, n_gen, depth):
    cmd = [a.llama_bench, "-m", model, "-t", str(a.threads), "-p", str(n_prompt), "-n", str(n_gen), "-d", str(depth),
           "-r", str(a.runs), "-o", "json"] + a.llama_extra.split()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    (test,) = json.loads(out.stdout)
    return test


class OtherLoad:
    """How many cores processes other than these benchmarks kept busy: the
    host's busy CPU time (/proc/stat, which counts every process, also those
    that ps cannot see) less the CPU time of our own children, over wall time.
    Well above 0 means the two sides competed with other work (and spinning
    thread pools slow down far more than the stolen share)."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.monotonic(), self.busy(), self.own()

    @staticmethod
    def busy():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal: all but idle and iowait
        return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def own():
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def cores(self):
        wall = time.monotonic() - self.t0
        return round(max(0.0, (self.busy() - self.busy0) - (self.own() - self.own0)) / wall, 2)


def file_id(path):
    """sha256 prefix and mtime of a binary: which build was measured (and
    whether it was rebuilt mid-run)."""
    import hashlib
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    return {"path": os.path.abspath(path), "sha256": digest,
            "mtime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(path)))}


def decode_start(cfg, prompt_len, tokens):
    """Where `ember bench generate` starts decoding (ember/cli/bench.cpp):
    after the prompt, moved back so that the steps fit in the context."""
    block = cfg["block"]
    p, t = min(prompt_len, block), min(tokens, block - 1)
    return max(1, min(p, block - t)), t


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ember", default=os.path.join(REPO, "build", "ember"), help="the ember binary")
    p.add_argument("--llama-bench", default=os.path.join(CACHE, "llama.cpp-build", "bin", "llama-bench"),
                   help="llama.cpp's llama-bench (bench/llamacpp_setup.sh builds it)")
    p.add_argument("--llama-quantize", help="llama.cpp's llama-quantize (default: beside --llama-bench)")
    p.add_argument("--gguf-py", default=os.path.join(CACHE, "llama.cpp-src", "vendor", "llama.cpp", "gguf-py"),
                   help="llama.cpp's gguf-py folder (for writing the float32 GGUF)")
    p.add_argument("--tiktoken", default=os.path.join(os.environ.get(
        "EMBER_TIKTOKEN_DIR", os.path.join(REPO, "..", "shared", "data", "tiktoken")), "gpt2.tiktoken"),
                   help="tiktoken's gpt2 rank file (the vocabulary)")
    p.add_argument("--models-dir", default=os.path.join(CACHE, "llamacpp-models"), help="where the GGUFs are cached")
    p.add_argument("--preset", default="small", choices=sorted(PRESETS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompt-len", type=int, default=256)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--runs", type=int, default=5, help="timed runs per measurement (each side reports their median)")
    p.add_argument("--formats", default="none,f16,int8,int4", help="ember --quant names, comma-separated")
    p.add_argument("--llama-extra", default="", help="more llama-bench flags, e.g. \"-ctk f32 -ctv f32\"")
    a = p.parse_args()
    a.llama_quantize = a.llama_quantize or os.path.join(os.path.dirname(a.llama_bench), "llama-quantize")
    cfg = PRESETS[a.preset]
    formats = [f for f in FORMATS if f[0] in a.formats.split(",")]

    paths = prepare_models(a, cfg)
    start, n_gen = decode_start(cfg, a.prompt_len, a.tokens)
    prompt = min(a.prompt_len, cfg["block"])
    version = subprocess.run([a.llama_bench, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True).stdout
    # Time a private copy of the ember binary: on a shared checkout someone may
    # rebuild build/ember mid-run, and every round should time the same build.
    ember_id = file_id(a.ember)
    snapshot = tempfile.mkdtemp(prefix="ember-bench-")
    atexit.register(shutil.rmtree, snapshot, True)
    a.ember = shutil.copy2(a.ember, os.path.join(snapshot, "ember"))
    load_before = os.getloadavg()
    other_all, other_rounds = OtherLoad(), []

    keys = ("decode_tokens_per_s", "prefill_tokens_per_s")
    res = {q: {s: {k: [] for k in keys + ("other_cores_busy",)} for s in ("ember", "llama")} for q, _, _ in formats}
    info = {}
    for r in range(a.rounds):
        other = OtherLoad()
        for quant, name, _ in formats:
            sides = ["ember", "llama"] if r % 2 == 0 else ["llama", "ember"]
            for side in sides:
                other_side = OtherLoad()
                if side == "ember":
                    e = run_ember(a, quant)
                    # The same model and the same positions as the GGUF side.
                    if (e["decode_start_pos"], e["decode_tokens"], e["prompt_len"]) != (start, n_gen, prompt):
                        sys.exit(f"ember decoded at {e['decode_start_pos']} x {e['decode_tokens']}, expected {start} x {n_gen}")
                    info[quant, "ember"] = {"params": e["params"], "weight_bytes": e["weight_bytes"],
                                            "group_size": e["group_size"]}
                    res[quant]["ember"]["decode_tokens_per_s"].append(e["decode_tokens_per_s"])
                    res[quant]["ember"]["prefill_tokens_per_s"].append(e["prefill_tokens_per_s"])
                else:
                    pp = run_llama(a, paths[quant], prompt, 0, 0)
                    tg = run_llama(a, paths[quant], 0, n_gen, start)
                    info[quant, "llama"] = {"params": tg["model_n_params"], "model_bytes": tg["model_size"],
                                            "type": name}
                    info["llama"] = {k: tg.get(k) for k in ("build_commit", "build_number", "cpu_info", "backends",
                                                            "n_threads", "n_batch", "n_ubatch", "type_k", "type_v",
                                                            "flash_attn", "use_mmap", "load_mode", "no_kv_offload",
                                                            "poll", "repack") if k in tg}
                    # llama-bench reports every run's tokens/s; take their median, like ember.
                    res[quant]["llama"]["decode_tokens_per_s"].append(statistics.median(tg["samples_ts"]))
                    res[quant]["llama"]["prefill_tokens_per_s"].append(statistics.median(pp["samples_ts"]))
                res[quant][side]["other_cores_busy"].append(other_side.cores())
            log(f"round {r + 1}/{a.rounds} {quant}/{name}: " + ", ".join(
                f"{s} {k.split('_')[0]} {res[quant][s][k][-1]:.0f}" for s in ("ember", "llama") for k in keys))
        other_rounds.append(other.cores())

    # The same model on both sides: the same parameter count in every format.
    counts = {side: {info[q, side]["params"] for q, _, _ in formats} for side in ("ember", "llama")}
    if len(counts["ember"] | counts["llama"]) != 1:
        sys.exit(f"parameter counts differ: {counts}")

    out = {"bench": "llamacpp_vs_ember", "preset": a.preset, "threads": a.threads, "rounds": a.rounds, "runs": a.runs,
           "prompt_len": prompt, "decode_tokens": n_gen, "decode_positions": [start, start + n_gen - 1],
           "ember_binary": ember_id, "llama_cpp_version": " ".join(version.split()), "llama_bench": info.get("llama", {}),
           "llama_extra_flags": a.llama_extra, "loadavg_before": [round(x, 2) for x in load_before],
           "loadavg_after": [round(x, 2) for x in os.getloadavg()], "other_cores_busy": other_all.cores(),
           "other_cores_busy_rounds": other_rounds, "formats": {}}
    for quant, name, _ in formats:
        f = {"gguf_type": name}
        for side in ("ember", "llama"):
            f[side] = dict(info[quant, side])
            for k in keys:
                f[side][k] = round(statistics.median(res[quant][side][k]), 1)
                f[side][k + "_rounds"] = [round(x, 1) for x in res[quant][side][k]]
            f[side]["other_cores_busy_rounds"] = res[quant][side]["other_cores_busy"]
        f["decode_ember_over_llama"] = round(f["ember"]["decode_tokens_per_s"] / f["llama"]["decode_tokens_per_s"], 3)
        f["prefill_ember_over_llama"] = round(f["ember"]["prefill_tokens_per_s"] / f["llama"]["prefill_tokens_per_s"], 3)
        out["formats"][quant] = f
    print(json.dumps(out))


if __name__ == "__main__":
    main()
