"""A real nginx (Debian's `nginx` package) in front of `signals serve` replicas: its own
config, logs and pid file in a scratch directory, run in the foreground (`daemon off`) as a
child of the caller, stopped by `stop()`.

The config is what README "Workers and replicas" recommends: round robin over the
replicas, short connect timeouts, and `proxy_next_upstream` retrying a request on the next
replica when one is unreachable or answers 502/503 - POSTs too (`non_idempotent`), which is
safe for `trackEvent(s)` because `clientEventId` makes a repeated event a DUPLICATE, never a
second row. `max_fails=0`: no replica is ever marked failed, so each request tries them in
turn (a restarting replica refuses at once); with `max_fails=1 fail_timeout=1s` nginx now
and then answered 502 "no live upstreams" during a rolling restart while one replica was up.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

CONFIG = """\
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    # which replica answered each request, never the client's address
    log_format upstreams '$request_uri|$status|$upstream_addr|$upstream_status';
    access_log {prefix}/access.log upstreams;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    upstream signals {{
{servers}
        keepalive 32;
        keepalive_timeout 4s;  # below SIGNALS_KEEP_ALIVE_TIMEOUT (5 s): nginx, not the replica, closes idle ones
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://signals;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_read_timeout 15s;
            # trackEvent(s) is idempotent by clientEventId: a POST sent again to the next
            # replica is stored once (DUPLICATE the second time), so non_idempotent is safe
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_next_upstream_timeout 10s;
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    """Debian's nginx (in /usr/sbin, not always on a non-root PATH), or None."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


class Nginx:
    """nginx on 127.0.0.1:`port` balancing over the replicas on `upstream_ports`."""

    def __init__(self, binary: str, prefix: Path, port: int, upstream_ports: list[int]) -> None:
        self.prefix = prefix
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        prefix.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in upstream_ports)
        self.config = prefix / "nginx.conf"
        self.config.write_text(CONFIG.format(prefix=prefix, port=port, servers=servers))
        self.proc = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_listening(self, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read() if self.proc.stderr else ''}")
            try:
                httpx.get(f"{self.url}/healthz", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not listen")

    def access_log(self) -> list[list[str]]:
        """Each access log line, split: request URI, status, upstream address(es) and status(es)
        (", "-separated when nginx tried more than one replica)."""
        path = self.prefix / "access.log"
        return [line.split("|") for line in path.read_text().splitlines()] if path.exists() else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight, then exit
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
