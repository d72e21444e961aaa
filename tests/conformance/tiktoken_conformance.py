#!/usr/bin/env python3
"""ember's tokenizer against the `tiktoken` package (label `conformance`).

Builds tiktoken encodings offline from the same rank files and encodings.json
that ember reads (../shared/data/tiktoken; never downloads), generates a few
hundred KB of varied text deterministically (English, code, Chinese and other
scripts, emoji, whitespace runs, numbers, contractions, special-token strings
as plain text) plus a text with every code point of planes 0-3 and 14 in
several contexts, and asserts that `ember tokenizer encode --tiktoken FILE`
prints exactly tiktoken's `encode_ordinary` ids, and that
`ember tokenizer decode` gives the text back.

  tiktoken_conformance.py --ember build/ember [--encoding cl100k_base] [--bytes N]
  tiktoken_conformance.py --ember build/ember --bench     # MB/s, ember vs tiktoken, same run

Exit status 0 when every encoding matches; on a mismatch it prints the first
differing position with the text around it. Exit status 77 (CTest: skipped)
when the rank files are not there.
"""
import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import time

ENCODINGS = ["gpt2", "cl100k_base", "o200k_base"]
SKIP_EXIT = 77  # CTest's SKIP_RETURN_CODE for these tests (tiktoken.cmake)
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.environ.get("EMBER_TIKTOKEN_DIR") or os.path.normpath(
    os.path.join(HERE, "..", "..", "..", "shared", "data", "tiktoken"))

ENGLISH = ("the of and to in is was for that with as on by he it at from his an were are which this be "
           "or has had not but first one their its new after who they have her she two been other when there "
           "all during into school time may years more most only over city some world would where later up "
           "such used many can state about national out known university united then made").split()
CAPS = ["The", "However", "In", "OpenAI", "GPT", "NASA", "I", "It", "We", "HTTP", "McDonald", "iPhone"]
CONTRACTIONS = ["don't", "it's", "I'm", "we'll", "they've", "she'd", "you're", "DON'T", "IT'S", "We'LL",
                "o'clock", "rock'n'roll", "'tis", "students'"]
CHINESE = "我们今天讨论人工智能大模型的训练数据和推理速度这是一个关于机器学习的中文句子北京上海深圳"
JAPANESE = ["日本語のテキスト", "カタカナとひらがな", "東京タワー"]
KOREAN = ["한국어 문장입니다", "안녕하세요"]
OTHER = ["Привет, мир!", "Καλημέρα κόσμε", "مرحبا بالعالم", "नमस्ते दुनिया", "שלום עולם", "ไทยภาษา",
         "Ünïcödé façade naïve café", "ℝ² ∀x∈ℝ: x²≥0", "e\u0301 a\u0308 n\u0303", "ﬁ ﬂ ß ẞ ſ K"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "🏳️‍🌈", "❤️", "🤖", "✨", "🔥🔥🔥", "😂😂"]
SPECIAL = ["<|endoftext|>", "<|fim_prefix|>", "<|endofprompt|>", "<|im_start|>"]
CODE = [
    "def f(x, y=2):\n    return x ** y  # square\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "if __name__ == \"__main__\":\n    main()\n",
    "const url = `https://example.com/api/v1/items?id=${id}&sort=desc`;\n",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;\n",
    "    \t  # mixed indentation\r\n\t\tx = {'a': [1, 2, 3], \"b\": None}\n",
    "#include <vector>\nstd::vector<float> v(1024, 0.0f);\n",
    "    }\n  }\n}\n\n\n",
]
WHITESPACE = [" ", "  ", "   ", "    ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\u00a0", "\u3000",
              "          \n\n\n   ", "\t\t\t", " \t \t"]


def generate_text(n_bytes, seed=20240601):
    """Deterministic mixed text of at least n_bytes UTF-8 bytes."""
    rng = random.Random(seed)
    parts, size = [], 0

    def sentence():
        words = []
        for i in range(rng.randint(4, 18)):
            r = rng.random()
            if r < 0.08:
                words.append(rng.choice(CONTRACTIONS))
            elif r < 0.14:
                words.append(rng.choice(CAPS))
            elif r < 0.20:
                words.append(str(rng.choice([rng.randint(0, 9), rng.randint(10, 99999), rng.randint(10**6, 10**12)])))
            elif r < 0.23:
                words.append("%.3f" % rng.uniform(-1000, 1000))
            else:
                words.append(rng.choice(ENGLISH))
        s = " ".join(words)
        return s[0].upper() + s[1:] + rng.choice([".", "!", "?", ",", ";", ":", "...", " --", ""])

    kinds = ["english"] * 6 + ["code"] * 3 + ["chinese", "cjk", "other", "emoji", "whitespace", "special", "mixed"]
    while size < n_bytes:
        kind = rng.choice(kinds)
        if kind == "english":
            piece = " ".join(sentence() for _ in range(rng.randint(1, 5))) + rng.choice(["\n", "\n\n", " "])
        elif kind == "code":
            piece = "".join(rng.choice(CODE) for _ in range(rng.randint(1, 4)))
        elif kind == "chinese":
            piece = "".join(CHINESE[rng.randrange(len(CHINESE))] for _ in range(rng.randint(5, 40)))
            piece += rng.choice(["。", "，", "！", "\n", "？"])
        elif kind == "cjk":
            piece = rng.choice(JAPANESE + KOREAN) + rng.choice([" ", "\n", "、"])
        elif kind == "other":
            piece = rng.choice(OTHER) + rng.choice([" ", "\n", ". "])
        elif kind == "emoji":
            piece = "".join(rng.choice(EMOJI) + rng.choice(["", " ", "  "]) for _ in range(rng.randint(1, 6)))
        elif kind == "whitespace":
            piece = "".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 8)))
            piece += rng.choice(ENGLISH)
        elif kind == "special":
            piece = rng.choice(SPECIAL) + rng.choice(["", " ", "\n"])
        else:
            piece = "".join(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x2fff),
                                            rng.randint(0x4e00, 0x9fff), rng.randint(0x1f300, 0x1f64f)]))
                            for _ in range(rng.randint(5, 60)))
        parts.append(piece)
        size += len(piece.encode("utf-8"))
    return "".join(parts)


def sweep_text():
    """Every code point of planes 0-3 and 14 in a few contexts (letters, spaces,
    digits, an apostrophe): catches any difference in Unicode classes between
    PCRE2 and tiktoken's regex. Planes 4-13 are unassigned and 15-16 private use."""
    cps = [c for c in list(range(0x40000)) + list(range(0xE0000, 0xE1000)) if not 0xD800 <= c < 0xE000]
    return "".join("%sa%s %s%s1%s's'%s\n" % ((chr(c),) * 6) for c in cps)


def load_encoding(data_dir, name):
    import tiktoken
    with open(os.path.join(data_dir, "encodings.json")) as f:
        spec = json.load(f)[name]
    ranks = {}
    with open(os.path.join(data_dir, name + ".tiktoken"), "rb") as f:
        for line in f:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(name, pat_str=spec["pat_str"], mergeable_ranks=ranks,
                             special_tokens=spec["special_tokens"],
                             explicit_n_vocab=spec.get("explicit_n_vocab"))


def run_ember(ember, args, stdin):
    proc = subprocess.run([ember] + args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError("%s %s failed (%d): %s" % (ember, " ".join(args), proc.returncode,
                                                      proc.stderr.decode(errors="replace").strip()))
    return proc.stdout


def check(ember, data_dir, name, text, what="generated text"):
    enc = load_encoding(data_dir, name)
    rank_file = os.path.join(data_dir, name + ".tiktoken")
    want = enc.encode_ordinary(text)
    got = json.loads(run_ember(ember, ["tokenizer", "encode", "--tiktoken", rank_file], text.encode("utf-8")))
    if got != want:
        i = next((k for k in range(min(len(got), len(want))) if got[k] != want[k]), min(len(got), len(want)))
        lo = max(0, i - 5)
        print("%s, %s: MISMATCH at token %d of %d (ember has %d)" % (name, what, i, len(want), len(got)))
        print("  tiktoken: %s %r" % (want[lo:i + 5], [enc.decode_single_token_bytes(t) for t in want[lo:i + 5]]))
        print("  ember:    %s %r" % (got[lo:i + 5], [enc.decode_single_token_bytes(t) for t in got[lo:i + 5]
                                                     if t < enc.n_vocab]))
        return False
    back = run_ember(ember, ["tokenizer", "decode", "--tiktoken", rank_file], json.dumps(got).encode())
    if back != text.encode("utf-8"):
        print("%s, %s: decode did not give the text back" % (name, what))
        return False
    print("%s, %s: %d bytes -> %d tokens, identical to tiktoken; decode round-trips" %
          (name, what, len(text.encode("utf-8")), len(want)))
    return True


def split_documents(text, min_chars=4096):
    """Same cut rule as `ember tokenizer bench` (at least 4096 bytes, ending after a newline)."""
    data = text.encode("utf-8")
    docs, pos = [], 0
    while pos < len(data):
        nl = data.find(b"\n", min(len(data), pos + min_chars))
        end = len(data) if nl < 0 else nl + 1
        docs.append(data[pos:end].decode("utf-8"))
        pos = end
    return docs


def bench(ember, data_dir, name, text, seconds, threads):
    enc = load_encoding(data_dir, name)
    n = len(text.encode("utf-8"))
    enc.encode_ordinary(text)  # warm-up
    best, spent, reps = 1e30, 0.0, 0
    while spent < seconds or reps < 3:
        t = time.perf_counter()
        enc.encode_ordinary(text)
        dt = time.perf_counter() - t
        best, spent, reps = min(best, dt), spent + dt, reps + 1
    docs = split_documents(text)
    batch_best, spent, reps = 1e30, 0.0, 0
    while spent < seconds or reps < 3:
        t = time.perf_counter()
        enc.encode_ordinary_batch(docs, num_threads=threads)
        dt = time.perf_counter() - t
        batch_best, spent, reps = min(batch_best, dt), spent + dt, reps + 1
    with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
        f.write(text.encode("utf-8"))
        path = f.name
    try:
        line = run_ember(ember, ["tokenizer", "bench", "--tiktoken", os.path.join(data_dir, name + ".tiktoken"),
                                 "--input", path, "--seconds", str(seconds), "--threads", str(threads)], b"")
    finally:
        os.unlink(path)
    ours = json.loads(line)
    result = {
        "encoding": name, "bytes": n, "threads": threads,
        "ember_mb_s": round(ours["encode_mb_s"], 2), "tiktoken_mb_s": round(n / best / 1e6, 2),
        "ratio": round(ours["encode_mb_s"] / (n / best / 1e6), 2),
        "ember_batch_mb_s": round(ours["batch_mb_s"], 2), "tiktoken_batch_mb_s": round(n / batch_best / 1e6, 2),
        "batch_ratio": round(ours["batch_mb_s"] / (n / batch_best / 1e6), 2),
        "ember_load_s": round(ours["load_s"], 3),
    }
    print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ember", required=True, help="path to the ember binary")
    ap.add_argument("--data", default=DEFAULT_DATA, help="folder with *.tiktoken and encodings.json")
    ap.add_argument("--encoding", action="append", choices=ENCODINGS, help="default: all three")
    ap.add_argument("--bytes", type=int, default=400_000, help="size of the generated text")
    ap.add_argument("--no-sweep", action="store_true", help="skip the all-code-points text")
    ap.add_argument("--bench", action="store_true", help="measure encode MB/s instead of checking")
    ap.add_argument("--seconds", type=float, default=2.0, help="bench: minimum time per measurement")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="bench: batch threads")
    args = ap.parse_args()
    try:
        import tiktoken  # noqa: F401
    except ImportError:
        print("conformance: the tiktoken package is missing from this Python (%s); "
              "add it to tests/conformance/requirements.txt and rerun scripts/test.sh" % sys.executable)
        return 1
    if not os.path.exists(os.path.join(args.data, "encodings.json")):
        # The rank files are not in the repository; a machine without them
        # (e.g. CI without ../shared/data) reports the test as skipped, not failed.
        print("SKIPPED: no tiktoken rank files: %s/encodings.json does not exist "
              "(set EMBER_TIKTOKEN_DIR or --data to the folder with *.tiktoken and encodings.json)" % args.data)
        return SKIP_EXIT
    text = generate_text(args.bytes)
    names = args.encoding or (["cl100k_base"] if args.bench else ENCODINGS)
    ok = True
    for name in names:
        if args.bench:
            bench(args.ember, args.data, name, text, args.seconds, args.threads)
        else:
            ok = check(args.ember, args.data, name, text) and ok
            if not args.no_sweep:
                ok = check(args.ember, args.data, name, sweep_text(), "every code point of planes 0-3, 14") and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
