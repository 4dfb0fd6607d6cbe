"""The userHash contract, computed independently of the app's own code (hmac/hashlib only)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac


def contract_hash(secret: str, day: dt.date, host: str, ip: str, normalised_ua: str) -> str:
    """userHash per the contract: hex(HMAC_SHA256(salt(day), host \\x1f ip \\x1f normalisedUA)),
    where salt(day) = HMAC_SHA256(secret, the UTC day as YYYY-MM-DD)."""
    salt = hmac.new(secret.encode("utf-8"), day.isoformat().encode("ascii"), hashlib.sha256).digest()
    return hmac.new(salt, f"{host}\x1f{ip}\x1f{normalised_ua}".encode(), hashlib.sha256).hexdigest()
