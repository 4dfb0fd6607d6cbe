"""The service running beside a test over real HTTP: `LiveServer` (the app under uvicorn in
a thread of the test process) and `Served` (a `signals serve` subprocess whose output lines
are collected as they come)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import uvicorn

from app.cli.serve import create_app
from app.config import Settings
from testkit.processes import clean_env


class LiveServer:
    """The app served over real HTTP on 127.0.0.1:<free port> until `stop()`; `port` serves
    on a given one instead (the same service back after an outage)."""

    def __init__(self, settings: Settings, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            log_config=None,
            access_log=False,
            lifespan="on",
            proxy_headers=False,
            server_header=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    async def start(self, timeout: float = 30.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start on {self.url}")
            await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        """Stop serving: afterwards the port refuses connections."""
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 15)
        self.sock.close()


class Served:
    """A `signals serve` subprocess whose stderr/stdout lines are collected as they come;
    `args` are more options of `signals serve` (e.g. `"--workers", "2"`)."""

    def __init__(self, env: dict[str, str], port: int, *args: str) -> None:
        self.port = port
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *args],
            env=clean_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_log(self, event: str, seconds: float = 10.0, after: int = 0, **fields: str) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                record = json.loads(line) if line.startswith("{") else {}
                if record.get("event") == event and all(record.get(k) == v for k, v in fields.items()):
                    return record
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} log line within {seconds} s:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1:<free port> that forwards every POST to `target` and keeps
    its JSON body and headers: what a gateway really sends upstream, to replay or inspect."""

    def __init__(self, target: str) -> None:
        import http.server

        import httpx

        self.target = target
        self.bodies: list[dict[str, object]] = []
        self.headers: list[dict[str, str]] = []  # lower-cased names, in the order of `bodies`
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                with proxy.lock:  # one request's body and headers at the same index
                    proxy.bodies.append(json.loads(raw))
                    proxy.headers.append({k.lower(): v for k, v in self.headers.items()})
                skip = {"host", "content-length", "connection", "transfer-encoding"}
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                answer = httpx.post(proxy.target, content=raw, headers=headers, timeout=30)
                self.send_response(answer.status_code)
                self.send_header("content-type", answer.headers.get("content-type", "application/json"))
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/graphql"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
