"""A loopback TCP proxy in front of PostgreSQL that can cut the database off and bring it back.

Used by the fault tests (tests/e2e/test_faults.py), the rate limiter's Redis test and the soak
report (bench/soak.py) to make an outage on demand without stopping the server under test:

    proxy = FaultProxy(database_url).start()   # listens on 127.0.0.1:<free port>
    app_url = proxy.url                         # the same database, through the proxy
    proxy.cut()        # drop every open connection, refuse new ones (connection refused)
    proxy.stall()      # a partition: connections stay open, nothing gets through
    proxy.restore()    # accept again (stalled connections are dropped first)

The target is the server of `database_url`: a TCP host/port, or the unix socket directory
the embedded PostgreSQL uses (`?host=/path`). The relay runs in its own process (this module,
one command per line on its stdin), so it works from synchronous scripts and async tests alike and
does not compete with the caller for the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from testkit.processes import free_port

ROOT = Path(__file__).resolve().parent.parent


class FaultProxy:
    """The controller: runs the relay in its own process (a relay thread in the load
    generator's process would wait on the GIL and add milliseconds to every query)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        url = make_url(database_url)
        socket_dir = url.query.get("host")
        if isinstance(socket_dir, tuple):
            socket_dir = socket_dir[0]
        if socket_dir and str(socket_dir).startswith("/"):
            self._target: tuple[str, int] | str = str(Path(str(socket_dir)) / f".s.PGSQL.{url.port or 5432}")
        else:
            self._target = (url.host or "127.0.0.1", url.port or 5432)
        self.port = free_port()
        self._process: subprocess.Popen[str] | None = None

    # --- the URL the service under test should use -------------------------------------
    @property
    def url(self) -> str:
        url = make_url(self.database_url)
        query = {k: v for k, v in url.query.items() if k != "host"}
        return url.set(host="127.0.0.1", port=self.port, query=query).render_as_string(hide_password=False)

    # --- control (blocking until the relay has done it) -----------------------------------
    def start(self) -> FaultProxy:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "testkit.faultproxy", json.dumps(self._target), str(self.port)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._send("listen")
        return self

    def cut(self) -> None:
        """Close every proxied connection and stop listening: new connects are refused."""
        self._send("cut")

    def stall(self) -> None:
        """Keep every connection open but pass no bytes either way, and accept new
        connections without answering: what a network partition looks like to a client."""
        self._send("stall")

    def restore(self) -> None:
        self._send("restore")

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            with contextlib.suppress(Exception):
                self._send("exit")
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _send(self, command: str) -> None:
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None, (
            "start() the proxy first"
        )
        process.stdin.write(command + "\n")
        process.stdin.flush()
        reply = process.stdout.readline().strip()
        if reply != "ok":
            raise RuntimeError(f"fault proxy did not confirm {command!r}: {reply or 'it exited'}")


class _Relay:
    """Inside the proxy's process: the listening socket and the byte pumps."""

    def __init__(self, target: tuple[str, int] | str, port: int) -> None:
        self.target = target
        self.port = port
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._stalled = False

    async def run(self) -> None:
        """Obey one command per line on stdin, answering each with one line on stdout."""
        loop = asyncio.get_running_loop()
        while True:
            command = (await loop.run_in_executor(None, sys.stdin.readline)).strip() or "exit"
            try:
                if command == "listen":
                    await self._listen()
                elif command == "cut":
                    await self._cut()
                elif command == "stall":
                    self._stalled = True
                elif command == "restore":
                    if self._stalled:
                        await self._cut()  # the stalled conversations are out of step: end them
                        self._stalled = False
                    await self._listen()
                elif command == "exit":
                    await self._cut()
                    _answer("ok")
                    return
                _answer("ok")
            except Exception as exc:  # noqa: BLE001 - reported to the controller
                _answer(f"{type(exc).__name__}: {exc}")

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._links):
            writer.transport.abort()  # RST: the client sees the connection die mid-conversation
        self._links.clear()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            client_writer.transport.abort()
            return
        if self._stalled:
            self._links.add(client_writer)
            with contextlib.suppress(Exception):
                while await client_reader.read(65536):
                    pass
            return
        try:
            if isinstance(self.target, str):
                upstream_reader, upstream_writer = await asyncio.open_unix_connection(self.target)
            else:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._links.update((client_writer, upstream_writer))
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer),
            self._pipe(upstream_reader, client_writer),
            return_exceptions=True,
        )
        for writer in (client_writer, upstream_writer):
            self._links.discard(writer)
            writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self._stalled:
                    continue  # swallowed
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()


def _answer(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


USAGE = """usage: python -m testkit.faultproxy TARGET PORT

The relay process FaultProxy starts: TARGET is JSON, "/path/to/socket" or ["host", port];
it listens on 127.0.0.1:PORT and obeys listen/cut/stall/restore/exit, one per line on stdin."""

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        sys.exit(USAGE)
    raw_target = json.loads(sys.argv[1])
    asyncio.run(_Relay(raw_target if isinstance(raw_target, str) else tuple(raw_target), int(sys.argv[2])).run())
