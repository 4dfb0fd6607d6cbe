"""Sending a message: email over SMTP (aiosmtplib; STARTTLS or implicit TLS, optional auth;
a multipart/alternative with the plain-text and HTML parts) and a Slack-compatible incoming
webhook (httpx, JSON with `text` and `blocks`). Both are optional: a channel without its
setting is not configured.

Each send is retried with exponential backoff (tenacity), `SIGNALS_DELIVERY_ATTEMPTS`
times; the retries are silent and a send that still fails is logged once, with the channel
and the error's class (never the webhook URL: it is a credential). Delivery runs in the
report jobs, never on the ingest path.
"""

from __future__ import annotations

import email.message
from collections.abc import Awaitable, Callable

import aiosmtplib
import httpx
from tenacity import AsyncRetrying, RetryError, stop_after_attempt, wait_exponential

from app.config import Settings
from app.logs import get_logger
from app.reports.render import Message

log = get_logger("signals.reports")

Sender = Callable[[Message], Awaitable[None]]


class Deliveries:
    """The configured channels, by name ("email", "webhook")."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.channels: dict[str, Sender] = {}
        if settings.smtp_host and settings.smtp_to:
            self.channels["email"] = self._email
        if settings.webhook_url is not None:
            self.channels["webhook"] = self._webhook

    async def _email(self, message: Message) -> None:
        s = self.settings
        mail = email.message.EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = s.smtp_from
        mail["To"] = ", ".join(s.smtp_to)
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        assert s.smtp_host is not None
        await aiosmtplib.send(
            mail,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls and not s.smtp_tls,
            use_tls=s.smtp_tls,
            timeout=s.smtp_timeout,
        )

    async def _webhook(self, message: Message) -> None:
        assert self.settings.webhook_url is not None
        async with httpx.AsyncClient(timeout=self.settings.webhook_timeout) as client:
            response = await client.post(self.settings.webhook_url.get_secret_value(), json=message.slack)
            response.raise_for_status()

    async def send(self, channel: str, message: Message, **fields: object) -> bool:
        """True when `channel` took the message (after retries); False, logged once, if not."""
        s = self.settings
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(s.delivery_attempts),
                wait=wait_exponential(multiplier=s.delivery_backoff_seconds, max=60),
                reraise=False,
            ):
                with attempt:
                    await self.channels[channel](message)
        except RetryError as failure:
            error = failure.last_attempt.exception()
            log.warning(
                "delivery failed",
                channel=channel,
                attempts=s.delivery_attempts,
                error=type(error).__name__,
                **fields,
            )
            return False
        return True
