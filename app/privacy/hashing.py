"""The privacy hash: who is who within one UTC day, never across.

    salt(day) = HMAC_SHA256(secret, "YYYY-MM-DD")           day in UTC, never persisted
    userHash  = hex(HMAC_SHA256(salt(day), host + "\\x1f" + ip + "\\x1f" + normalisedUA))
    normalisedUA = browserFamily + "|" + browserMajor + "|" + osFamily   (ua-parser)

The secret is passed in by the caller, read from `SaltSecret.current()` for every batch, so
a rotated secret takes effect at once and is kept nowhere else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

SEPARATOR = "\x1f"


def utc_day(moment: dt.datetime) -> str:
    """ "YYYY-MM-DD" of `moment` in UTC (a naive datetime is taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.date().isoformat()


def daily_salt(secret: bytes, moment: dt.datetime) -> bytes:
    return hmac.new(secret, utc_day(moment).encode("ascii"), hashlib.sha256).digest()


def normalised_user_agent(browser_family: str, browser_major: str, os_family: str) -> str:
    return f"{browser_family}|{browser_major}|{os_family}"


def caller_event_key(caller_key: str, client_event_id: str) -> str:
    """What deduplicates an event: the caller's `clientEventId` keyed by the caller's own key
    (itself an HMAC of the subject). Two callers' ids never collide, and the stored value
    tells nobody which id was sent: computing it needs the server's key."""
    return hmac.new(caller_key.encode(), client_event_id.encode(), hashlib.sha256).hexdigest()


def user_hash(salt: bytes, host: str, ip: str, normalised_ua: str) -> str:
    message = f"{host}{SEPARATOR}{ip}{SEPARATOR}{normalised_ua}".encode()
    return hmac.new(salt, message, hashlib.sha256).hexdigest()
