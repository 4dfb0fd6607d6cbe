"""Real local receivers for what Signals sends: an SMTP server (aiosmtpd's protocol, with
AUTH) and an HTTP endpoint for incoming-webhook posts, both on 127.0.0.1 at a free port in
the test's own event loop. Each can be told to fail its next N deliveries (SMTP 451, HTTP
503) to play an outage."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.message
import email.policy
import json
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

SMTP_USER = "signals"
SMTP_PASSWORD = "receiver-password-" + "q8W3e7R1" * 2


@dataclass
class MailBox:
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    envelopes: list[Envelope] = field(default_factory=list)
    fail_next: int = 0
    attempts: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            return "451 4.3.0 try again later"
        raw = envelope.original_content or b""
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def parts(self, index: int = -1) -> tuple[str, str]:
        """(plain text, HTML) of a received message."""
        message = self.messages[index]
        text_part = message.get_body(("plain",))
        html_part = message.get_body(("html",))
        assert text_part is not None and html_part is not None
        # SMTP carries CRLF line ends; the message as written has LF
        return text_part.get_content().replace("\r\n", "\n"), html_part.get_content().replace("\r\n", "\n")


def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword) and data.login.decode() == SMTP_USER and data.password.decode() == SMTP_PASSWORD
    )
    return AuthResult(success=ok)


@contextlib.asynccontextmanager
async def smtp_receiver() -> AsyncIterator[tuple[int, MailBox]]:
    """(port, mailbox) of an SMTP server requiring AUTH (over plain TCP: loopback only)."""
    box = MailBox()
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        with warnings.catch_warnings():  # AUTH without TLS: on loopback, for the test only
            warnings.simplefilter("ignore", UserWarning)
            return SMTP(
                box, authenticator=_authenticate, auth_required=True, auth_require_tls=False, hostname="localhost"
            )

    server = await loop.create_server(protocol, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], box
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Hook:
    posts: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    fail_next: int = 0
    attempts: int = 0


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[str, Hook]]:
    """(url, hook) of an HTTP/1.1 endpoint that keeps every JSON body POSTed to it."""
    hook = Hook()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            hook.attempts += 1
            if hook.fail_next > 0:
                hook.fail_next -= 1
                status = b"503 Service Unavailable"
            else:
                hook.posts.append(json.loads(body))
                hook.paths.append(path)
                status = b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}/hooks/T000/B000/secret-path-token", hook
    finally:
        server.close()
        await server.wait_closed()
