#!/usr/bin/env python3
"""Conformance: a real browser (Debian's chromium driven by Playwright; label
conformance, peers venv) uses the web chat page of `ember serve`: a streamed
answer appears, the scripted answer "OK <script>" shows as text (no element
is created from it), the stop button ends a running stream and the server
frees the slot, and "New chat" clears the conversation.

usage: web_page_test.py EMBER MAKE_SCRIPTED_CHECKPOINT WORK_DIR
"""
import os
import sys

from playwright.sync_api import expect, sync_playwright

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_harness import REPLY, Server, make_checkpoint  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def main():
    ember, tool, work = sys.argv[1:4]
    # 40 ms per token: a 300-token stream lasts long enough to press Stop.
    server = Server(ember, make_checkpoint(tool, work, block=512), work, "--debug-token-delay-ms", "40")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"http://{server.host}:{server.port}/")
            expect(page.locator("#model")).to_have_text("tiny")

            # A short answer: exactly the script, shown as text.
            page.click("#settings-toggle")
            page.fill("#max-tokens", "11")
            page.fill("#input", "hello")
            page.press("#input", "Enter")
            answer = page.locator(".msg.assistant").last
            expect(answer).to_have_text(REPLY + "cut at the token limit", timeout=20000)
            assert page.locator("#messages script").count() == 0, "model output became an element"
            assert page.locator(".msg.user").last.text_content() == "hello"

            # A long answer, stopped while it streams.
            page.fill("#max-tokens", "300")
            page.fill("#input", "go on")
            page.click("#send")
            expect(page.locator("#stop")).to_be_visible()
            running = page.locator(".msg.assistant").last
            expect(running).to_contain_text("OK <script>OK", timeout=20000)
            page.click("#stop")
            expect(running).to_contain_text("stopped")
            expect(page.locator("#stop")).to_be_hidden()
            server.wait_metric("ember_active_slots", lambda v: v == 0, timeout=5)
            stopped_len = len(running.text_content())
            page.wait_for_timeout(500)
            assert len(running.text_content()) == stopped_len, "text kept growing after stop"
            assert stopped_len < 300, stopped_len

            # New chat clears the view; the next question is answered afresh.
            page.click("#new-chat")
            expect(page.locator(".msg")).to_have_count(0)
            page.fill("#max-tokens", "2")
            page.fill("#input", "again")
            page.press("#input", "Enter")
            expect(page.locator(".msg.assistant").last).to_have_text("OKcut at the token limit", timeout=20000)
            expect(page.locator(".msg")).to_have_count(2)
            assert not errors, errors
            browser.close()
    except BaseException:
        print(server.logs()[-4000:], file=sys.stderr)
        raise
    finally:
        rc = server.stop()
    assert rc == 0, rc
    print("web page: ok")


if __name__ == "__main__":
    main()
