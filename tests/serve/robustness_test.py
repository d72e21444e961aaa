#!/usr/bin/env python3
"""`ember serve` robustness battery (label unit; python3 standard library only).

Starts the server on the scripted checkpoint (serve_harness.py) with an API
key, one decode slot, a queue of one and a per-token delay (so streams last
long enough to interrupt), then checks that every bad request gets its status
and OpenAI-style error, that stalled and vanishing clients neither block others
nor keep a slot, that a full server answers 429 with Retry-After, and that
SIGTERM drains: the running stream finishes, new requests get 503, exit 0;
a non-streaming request whose client leaves is cancelled at once too;
a second signal cancels what is still running.

usage: robustness_test.py EMBER MAKE_SCRIPTED_CHECKPOINT WORK_DIR
"""
import json
import os
import signal
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import REPLY, Server, make_checkpoint, sse_events  # noqa: E402

KEY = {"Authorization": "Bearer sekret"}
CHAT = "/v1/chat/completions"
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


def chat_body(**extra):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hello"}]}
    body.update(extra)
    return body


def expect_error(server, status, method, path, body=None, headers=KEY, message=None, code=None, param=None):
    got, hdrs, raw = server.request(method, path, body, headers)
    check(got == status, f"{method} {path}: status {got}, expected {status}: {raw[:300]!r}")
    err = json.loads(raw)["error"]
    check(set(err) == {"message", "type", "param", "code"}, f"error fields {sorted(err)}")
    if message is not None:
        check(err["message"] == message, f"message {err['message']!r}, expected {message!r}")
    if code is not None:
        check(err["code"] == code, f"code {err['code']!r}, expected {code!r}")
    if param is not None:
        check(err["param"] == param, f"param {err['param']!r}, expected {param!r}")
    return err, hdrs


def test_basics(s):
    status, _, body = s.request("GET", "/health")
    check(status == 200 and json.loads(body) == {"status": "ok"}, f"/health {status} {body!r}")
    status, hdrs, body = s.request("GET", "/")
    check(status == 200 and hdrs["Content-Type"].startswith("text/html") and b"ember chat" in body, "web page")
    check("script-src 'self'" in hdrs.get("Content-Security-Policy", ""), "page CSP")
    status, _, body = s.request("GET", "/v1/models", headers=KEY)
    check(status == 200 and json.loads(body)["data"][0]["id"] == "tiny", f"/v1/models {body!r}")
    status, _, body = s.request("POST", CHAT, chat_body(max_tokens=11, temperature=0), KEY)
    check(status == 200, f"chat {status} {body!r}")
    r = json.loads(body)
    check(r["object"] == "chat.completion" and r["choices"][0]["message"] == {"role": "assistant", "content": REPLY},
          f"chat reply {r}")
    check(r["choices"][0]["finish_reason"] == "length", "finish length")
    check(r["usage"]["completion_tokens"] == 11 and r["usage"]["total_tokens"] == r["usage"]["prompt_tokens"] + 11,
          f"usage {r['usage']}")
    # Unknown fields are ignored; stop strings end the reply without being returned.
    status, _, body = s.request("POST", CHAT, chat_body(max_tokens=30, stop=["<s"], frobnicate={"a": 1}, user="u"), KEY)
    r = json.loads(body)
    check(status == 200 and r["choices"][0]["message"]["content"] == "OK " and r["choices"][0]["finish_reason"] == "stop",
          f"stop string {body!r}")
    # max_tokens beyond the context is clamped to the room the prompt leaves in it (128).
    status, _, body = s.request("POST", CHAT, chat_body(max_tokens=2**63 + 5), KEY)
    r = json.loads(body)
    check(status == 200 and r["choices"][0]["finish_reason"] == "length" and r["usage"]["total_tokens"] == 128,
          f"huge max_tokens {body!r}")
    status, _, body = s.request("POST", "/v1/completions", {"model": "tiny", "prompt": "hi", "max_tokens": 3,
                                                             "logprobs": 0}, KEY)
    r = json.loads(body)
    # After "i" the script continues "pt>".
    check(status == 200 and r["choices"][0]["text"] == "pt>" and r["choices"][0]["logprobs"]["tokens"] == ["p", "t", ">"],
          f"completions {body!r}")


def test_errors(s):
    expect_error(s, 401, "GET", "/v1/models", headers={}, code="invalid_api_key",
                 message="missing API key: send the header 'Authorization: Bearer <key>'")
    expect_error(s, 401, "POST", CHAT, chat_body(), headers={"Authorization": "Bearer nope"}, code="invalid_api_key",
                 message="invalid API key")
    err, _ = expect_error(s, 400, "POST", CHAT, '{"model": "tiny", "messages": [', code="invalid_json")
    check(err["message"].startswith("the request body is not valid JSON: parse error"), err["message"])
    expect_error(s, 400, "POST", CHAT, b'{"model": "tiny\xff"}', code="invalid_utf8",
                 message="the request body is not valid UTF-8")
    expect_error(s, 400, "POST", CHAT, chat_body(temperature="hot"), param="temperature",
                 message="temperature: expected a number, got string")
    expect_error(s, 400, "POST", CHAT, chat_body(messages="hi"), param="messages",
                 message="messages: expected an array, got string")
    expect_error(s, 400, "POST", CHAT, chat_body(max_tokens=-1), param="max_tokens",
                 message="max_tokens: must be >= 1, got -1")
    expect_error(s, 400, "POST", CHAT, chat_body(max_tokens=1e30), param="max_tokens",
                 message="max_tokens: expected an integer, got number")
    expect_error(s, 400, "POST", CHAT, chat_body(n=3), param="n", message="n: only n=1 is supported, got 3")
    expect_error(s, 404, "POST", CHAT, chat_body(model="gpt-4"), code="model_not_found", param="model",
                 message='model "gpt-4" does not exist; this server serves "tiny"')
    expect_error(s, 400, "POST", CHAT, chat_body(messages=[{"role": "user", "content": "x" * 400}]),
                 code="context_length_exceeded", param="messages")
    expect_error(s, 404, "GET", "/nope", code="not_found", message="unknown route: GET /nope")
    expect_error(s, 404, "POST", "/v1/embeddings", chat_body(), code="not_found")
    _, hdrs = expect_error(s, 405, "GET", CHAT, code="method_not_allowed",
                           message="method GET is not allowed on /v1/chat/completions (use POST)")
    check(hdrs.get("Allow") == "POST", f"Allow {hdrs}")
    # A body over --max-body-bytes is refused from its Content-Length, before it is read.
    conn = s.connection()
    conn.putrequest("POST", CHAT)
    conn.putheader("Content-Length", str(10**8))
    conn.putheader("Authorization", KEY["Authorization"])
    conn.endheaders(b"{}")
    r = conn.getresponse()
    err = json.loads(r.read())["error"]
    check(r.status == 413 and err["code"] == "request_too_large", f"413: {r.status} {err}")
    conn.close()


def open_stream(s, **extra):
    conn = s.connection()
    conn.request("POST", CHAT, json.dumps(chat_body(stream=True, **extra)),
                 {"Content-Type": "application/json", **KEY})
    r = conn.getresponse()
    check(r.status == 200 and r.getheader("Content-Type").startswith("text/event-stream"), f"stream {r.status}")
    return conn, r


def test_stream(s):
    conn, r = open_stream(s, max_tokens=13, stream_options={"include_usage": True}, logprobs=True)
    events = sse_events(r)
    conn.close()
    check(events[-1] == "[DONE]", "ends with [DONE]")
    chunks = events[:-1]
    check(len({c["id"] for c in chunks}) == 1, "one id per stream")
    check(chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}, f"first chunk {chunks[0]}")
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:] if c["choices"])
    check(text == REPLY + "OK", f"streamed text {text!r}")
    check(chunks[-2]["choices"][0]["finish_reason"] == "length" and chunks[-2]["choices"][0]["delta"] == {},
          f"final chunk {chunks[-2]}")
    check(chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 13, f"usage chunk {chunks[-1]}")
    check(all(c["usage"] is None for c in chunks[:-1]), "usage: null before the usage chunk")
    lp = [e for c in chunks[1:-2] for e in c["choices"][0]["logprobs"]["content"]]
    check(len(lp) == 13 and lp[0]["token"] == "O", f"logprobs {lp[:2]}")


def test_completions_stream(s):
    conn = s.connection()
    conn.request("POST", "/v1/completions", json.dumps({"model": "tiny", "prompt": "hi", "max_tokens": 5,
                                                        "stream": True}), KEY)
    r = conn.getresponse()
    events = sse_events(r)
    conn.close()
    check(events[-1] == "[DONE]", "completions stream ends with [DONE]")
    check(all(e["object"] == "text_completion" for e in events[:-1]), "text_completion chunks")
    check("".join(e["choices"][0]["text"] for e in events[:-1]) == "pt>OK", f"completions stream {events}")
    check(events[-2]["choices"][0]["finish_reason"] == "length", "completions finish")


def test_slow_client(s):
    # Headers sent, body promised but never sent: others are served meanwhile,
    # and the stalled connection is dropped after --read-timeout (2 s).
    stalled = socket.create_connection((s.host, s.port))
    stalled.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    t0 = time.time()
    status, _, _ = s.request("POST", CHAT, chat_body(max_tokens=2), KEY)
    check(status == 200 and time.time() - t0 < 5, "served while another client stalls")
    stalled.settimeout(10)
    try:
        data = stalled.recv(4096)
        while data and not data.endswith(b"}"):
            more = stalled.recv(4096)
            if not more:
                break
            data += more
    except ConnectionResetError:
        data = b""
    check(time.time() - t0 < 9, "stalled client dropped after the read timeout")
    stalled.close()


def test_disconnect(s):
    before = s.metrics()["ember_generated_tokens_total"]
    conn, r = open_stream(s)  # no max_tokens: ~100 tokens at 10 ms each
    r.readline()
    r.readline()
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    s.wait_metric("ember_active_slots", lambda v: v == 0, timeout=5)
    s.wait_metric("ember_client_disconnects_total", lambda v: v and v >= 1, timeout=5)
    generated = s.metrics()["ember_generated_tokens_total"] - before
    check(generated < 60, f"cancelled stream still generated {generated} tokens")


def test_disconnect_non_streaming(s):
    # Nothing is written to a non-streaming client until its reply is ready, so
    # the server must see the close on the socket. Without max_tokens the reply
    # would take the whole context (~100 tokens at 10 ms each).
    for path, body in ((CHAT, chat_body()), ("/v1/completions", {"model": "tiny", "prompt": "hi", "max_tokens": 110})):
        before = s.metrics()
        conn = s.connection()
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **KEY})
        s.wait_metric("ember_active_slots", lambda v: v == 1, timeout=5)
        t0 = time.time()
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        s.wait_metric("ember_active_slots", lambda v: v == 0, timeout=5)
        freed = time.time() - t0
        after = s.metrics()
        generated = after["ember_generated_tokens_total"] - before["ember_generated_tokens_total"]
        check(generated < 60, f"{path}: the abandoned request still generated {generated} tokens ({freed:.2f} s)")
        check(after["ember_client_disconnects_total"] == before.get("ember_client_disconnects_total", 0) + 1,
              f"{path}: disconnect counted")
        key = f'ember_http_requests_total{{endpoint="{path}",status="499"}}'
        s.wait_metric(key, lambda v, n=before.get(key, 0): v == n + 1, timeout=5)
        status, _, _ = s.request("POST", CHAT, chat_body(max_tokens=2), KEY)
        check(status == 200, f"{path}: the freed slot serves the next request")


def test_capacity(s):
    # --slots 1 --queue 1: one decoding, one waiting, the third is refused.
    a = open_stream(s)
    s.wait_metric("ember_active_slots", lambda v: v == 1)
    b = open_stream(s)
    s.wait_metric("ember_queue_depth", lambda v: v == 1)
    _, hdrs = expect_error(s, 429, "POST", CHAT, chat_body(max_tokens=2), code="server_at_capacity")
    check(hdrs.get("Retry-After") == "1", f"Retry-After {hdrs}")
    for conn, _ in (a, b):
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
    s.wait_metric("ember_active_slots", lambda v: v == 0)
    s.wait_metric("ember_queue_depth", lambda v: v == 0)
    status, _, _ = s.request("POST", CHAT, chat_body(max_tokens=2), KEY)
    check(status == 200, "serves again after the load is gone")


def test_metrics(s):
    m = s.metrics()
    check(m.get('ember_http_requests_total{endpoint="/v1/chat/completions",status="400"}', 0) >= 5, "400s counted")
    check(m.get('ember_http_requests_total{endpoint="other",status="404"}', 0) >= 2, "unknown routes counted as other")
    check(m.get("ember_time_to_first_token_seconds_count", 0) >= 3, "TTFT histogram")
    check(m.get('ember_request_duration_seconds_bucket{le="+Inf"}') == m.get("ember_request_duration_seconds_count"),
          "+Inf bucket equals count")
    check(m["ember_slots"] == 1, "slots gauge")


def test_drain(s):
    conn, r = open_stream(s, max_tokens=60)  # ~0.6 s at 10 ms per token
    first = r.readline()
    check(first.startswith(b"data: "), "stream started")
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    _, hdrs = expect_error(s, 503, "POST", CHAT, chat_body(max_tokens=2), code="shutting_down")
    check(hdrs.get("Retry-After") == "1", "Retry-After while draining")
    status, _, _ = s.request("GET", "/health")
    check(status == 503, "/health 503 while draining")
    events = sse_events(r)
    conn.close()
    check(events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] == "length", "running stream finished")
    rc = s.proc.wait(20)
    check(rc == 0, f"exit code {rc} after SIGTERM")


def test_second_signal_cancels(ember, ckpt, work):
    s = Server(ember, ckpt, work, "--debug-token-delay-ms", "10", "--drain-timeout", "60")
    try:
        conn, r = open_stream(s)  # ~100 tokens at 10 ms: would take a second
        r.readline()
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        s.proc.send_signal(signal.SIGTERM)
        events = sse_events(r)
        conn.close()
        check(events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] == "cancelled",
              f"second signal cancels: {events[-2:]}")
        check(s.proc.wait(20) == 0, "exit 0 after a cancelled drain")
    except BaseException:
        print(s.logs()[-3000:], file=sys.stderr)
        raise
    finally:
        if s.proc.poll() is None:
            s.proc.kill()


def main():
    ember, tool, work = sys.argv[1:4]
    ckpt = make_checkpoint(tool, work)
    s = Server(ember, ckpt, work, "--api-key", "sekret", "--slots", "1", "--queue", "1", "--read-timeout", "2",
               "--max-body-bytes", "65536", "--debug-token-delay-ms", "10", "--drain-timeout", "20")
    try:
        for test in (test_basics, test_errors, test_stream, test_completions_stream, test_slow_client, test_disconnect,
                     test_disconnect_non_streaming, test_capacity, test_metrics, test_drain):
            t0 = time.time()
            test(s)
            print(f"ok   {test.__name__} ({time.time() - t0:.1f} s)", flush=True)
    except BaseException:
        print(s.logs()[-6000:], file=sys.stderr)
        raise
    finally:
        if s.proc.poll() is None:
            s.proc.kill()
    test_second_signal_cancels(ember, ckpt, work)
    print("ok   test_second_signal_cancels", flush=True)
    print(f"serve robustness: {checks} checks passed")


if __name__ == "__main__":
    main()
