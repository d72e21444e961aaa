"""Shared by the `ember serve` end-to-end tests: make the scripted checkpoint,
start `ember serve --port 0` on it, read the port it prints, make requests
(standard library only), and stop it. See scripted_model.h for the model: its
reply to any chat is "OK <script>" (looped here, so streams run until
max_tokens or the context ends)."""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

REPLY = "OK <script>"


def make_checkpoint(tool, work, loop=True, block=128):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    args = [tool, os.path.join(work, "ckpt"), REPLY, "--block", str(block)] + (["--loop"] if loop else [])
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, timeout=60)
    return os.path.join(work, "ckpt")


class Server:
    """`ember serve` in the background; .port once it printed "serving on"."""

    def __init__(self, ember, checkpoint, work, *extra):
        self.log_path = os.path.join(work, "serve.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [ember, "serve", "--checkpoint", checkpoint, "--port", "0", "--model-name", "tiny", "--threads", "1",
             *extra], stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.stdout = []
        found = threading.Event()

        def read():
            for line in self.proc.stdout:
                self.stdout.append(line)
                m = re.match(r"serving on http://([0-9.]+):(\d+)$", line.strip())
                if m:
                    self.host, self.port = m.group(1), int(m.group(2))
                    found.set()
        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not found.wait(60):
            self.proc.kill()
            raise AssertionError("ember serve did not print 'serving on ...':\n" + self.logs())

    def logs(self):
        self.log.flush()
        with open(self.log_path) as f:
            return "stdout:\n" + "".join(self.stdout) + "stderr:\n" + f.read()

    def connection(self, timeout=20):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=20):
        """(status, headers dict, body bytes); a dict body is sent as JSON."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def metrics(self):
        status, _, body = self.request("GET", "/metrics")
        assert status == 200, status
        values = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def wait_metric(self, name, predicate, timeout=10):
        deadline = time.time() + timeout
        while True:
            value = self.metrics().get(name)
            if predicate(value):
                return value
            if time.time() > deadline:
                raise AssertionError(f"{name} = {value} after {timeout} s")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.reader.join(5)
            self.log.close()


def sse_events(response):
    """The `data:` payloads of an SSE response, in order ('[DONE]' as a string)."""
    events = []
    for raw in response:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("data: "):
            data = line[6:]
            events.append(data if data == "[DONE]" else json.loads(data))
            if data == "[DONE]":
                break
    return events
