#!/usr/bin/env python3
"""Conformance: the official `openai` Python client against `ember serve`
(label conformance; runs in the peers venv). Lists models, completes a chat
without and with streaming, a legacy completion, and checks that the client
raises its own typed errors for our 401 and 404 answers.

usage: openai_client_test.py EMBER MAKE_SCRIPTED_CHECKPOINT WORK_DIR
"""
import os
import sys

import openai

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import REPLY, Server, make_checkpoint  # noqa: E402


def main():
    ember, tool, work = sys.argv[1:4]
    server = Server(ember, make_checkpoint(tool, work), work, "--api-key", "sekret")
    try:
        base = f"http://{server.host}:{server.port}/v1"
        client = openai.OpenAI(base_url=base, api_key="sekret", max_retries=0, timeout=30)

        models = client.models.list()
        assert [m.id for m in models.data] == ["tiny"], models

        r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello"}],
                                           max_tokens=11, temperature=0, seed=1)
        assert r.choices[0].message.role == "assistant" and r.choices[0].message.content == REPLY, r
        assert r.choices[0].finish_reason == "length", r
        assert r.usage.completion_tokens == 11 and r.usage.total_tokens == r.usage.prompt_tokens + 11, r.usage

        stream = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello"}],
                                                max_completion_tokens=22, stream=True, stop=["t>O"],
                                                stream_options={"include_usage": True})
        text, finish, usage = "", None, None
        for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
            for c in chunk.choices:
                text += c.delta.content or ""
                finish = c.finish_reason or finish
        assert text == "OK <scrip" and finish == "stop", (text, finish)
        assert usage is not None and usage.completion_tokens >= 11, usage

        c = client.completions.create(model="tiny", prompt="hi", max_tokens=3)
        assert c.choices[0].text == "pt>", c

        try:
            client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])
            raise AssertionError("unknown model accepted")
        except openai.NotFoundError as e:
            assert e.status_code == 404 and "does not exist" in e.message, e
        try:
            openai.OpenAI(base_url=base, api_key="wrong", max_retries=0).models.list()
            raise AssertionError("wrong key accepted")
        except openai.AuthenticationError as e:
            assert e.status_code == 401, e
        try:
            client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x"}], temperature=5)
            raise AssertionError("bad temperature accepted")
        except openai.BadRequestError as e:
            assert "temperature: must be in [0, 2], got 5" in e.message, e.message
    except BaseException:
        print(server.logs()[-4000:], file=sys.stderr)
        raise
    finally:
        rc = server.stop()
    assert rc == 0, rc
    print(f"openai client {openai.__version__}: ok")


if __name__ == "__main__":
    main()
