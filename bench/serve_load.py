"""Load test of `ember serve`: N concurrent streaming chat clients against one server.

Starts `ember serve` on a checkpoint (any free port), measures one streaming
request alone (the single-stream rate), then runs --clients streaming requests
at once (each from its own thread, standard library only) and prints one JSON
line: requests completed, aggregate generated tokens/s, the ratio to the single
stream, and p50/p99 time to first token and inter-token latency (ms).

    python3 bench/serve_load.py --ember build/ember --checkpoint runs/small-sft \
        --clients 32 --max-tokens 64 --slots 32 --threads 2

Tokens are counted from the server's `usage` (stream_options.include_usage),
so they are model tokens, not SSE chunks.
"""
import argparse
import http.client
import json
import statistics
import subprocess
import threading
import time


def percentile(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(q / 100.0 * (len(xs) - 1)))))
    return xs[k]


def served_model(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request("GET", "/v1/models")
    name = json.loads(conn.getresponse().read())["data"][0]["id"]
    conn.close()
    return name


def stream_chat(host, port, model, prompt, max_tokens, seed):
    """One streaming request; returns (ok, completion_tokens, ttft_s, gaps_s, total_s)."""
    body = json.dumps({
        "model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0.8, "seed": seed,
        "messages": [{"role": "user", "content": prompt}],
        "stream_options": {"include_usage": True},
    })
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=600)
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        resp.read()
        return False, 0, None, [], time.perf_counter() - t0
    ttft, last, gaps, tokens, done = None, None, [], 0, False
    for raw in resp:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            done = True
            break
        chunk = json.loads(data)
        if chunk.get("usage"):
            tokens = chunk["usage"].get("completion_tokens", tokens)
        if any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
            now = time.perf_counter()
            if ttft is None:
                ttft = now - t0
            else:
                gaps.append(now - last)
            last = now
    conn.close()
    return done, tokens, ttft, gaps, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ember", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--slots", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompt", default="Tell me about the village.")
    a = p.parse_args()

    server = subprocess.Popen([a.ember, "serve", "--checkpoint", a.checkpoint, "--port", "0", "--quiet",
                               "--slots", str(a.slots), "--queue", str(max(16, a.clients)),
                               "--http-threads", str(a.clients + 8), "--threads", str(a.threads)],
                              stdout=subprocess.PIPE, text=True)
    try:
        line = ""
        while not line.startswith("serving on "):  # the model line comes first
            line = server.stdout.readline()
            if not line:
                raise SystemExit("serve did not start")
        url = line.split()[-1]
        host, port = url.split("//")[1].split(":")
        port = int(port.rstrip("/"))

        model = served_model(host, port)
        ok, tokens, ttft, gaps, total = stream_chat(host, port, model, a.prompt, a.max_tokens, 0)
        if not ok:
            raise SystemExit("the single stream failed")
        single_tps = tokens / total

        results = [None] * a.clients

        def client(i):
            results[i] = stream_chat(host, port, model, a.prompt, a.max_tokens, i + 1)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        done = [r for r in results if r and r[0]]
        all_tokens = sum(r[1] for r in done)
        ttfts = [r[2] * 1e3 for r in done if r[2] is not None]
        itls = [g * 1e3 for r in done for g in r[3]]
        agg = all_tokens / wall
        print(json.dumps({
            "bench": "serve_load", "clients": a.clients, "completed": len(done), "max_tokens": a.max_tokens,
            "slots": a.slots, "threads": a.threads, "wall_s": round(wall, 2), "tokens": all_tokens,
            "aggregate_tokens_per_s": round(agg, 1), "single_stream_tokens_per_s": round(single_tps, 1),
            "aggregate_over_single": round(agg / single_tps, 2),
            "ttft_ms_p50": round(percentile(ttfts, 50), 1), "ttft_ms_p99": round(percentile(ttfts, 99), 1),
            "itl_ms_p50": round(percentile(itls, 50), 1), "itl_ms_p99": round(percentile(itls, 99), 1),
            "single_ttft_ms": round(ttft * 1e3, 1),
            "single_itl_ms_median": round(statistics.median(gaps) * 1e3, 1) if gaps else None,
        }))
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
