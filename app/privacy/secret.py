"""The salt secret: where it comes from, and a safe fingerprint of it.

`salt(day) = HMAC_SHA256(secret, "YYYY-MM-DD")` (see app/privacy/hashing.py). The secret comes
from `SIGNALS_SALT_SECRET`, from the file named by `SIGNALS_SALT_SECRET_FILE`, or (in
development only, when neither is set) from a file generated under the data dir.
The secret itself is never logged; `fingerprint()` is a short, non-reversible tag.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from app.config import ConfigError, Settings, check_secret_file, dev_secret


def fingerprint(secret: bytes) -> str:
    """12 hex chars of sha256("signals-fingerprint|" + secret): identifies, never reveals."""
    return hashlib.sha256(b"signals-fingerprint|" + secret).hexdigest()[:12]


class SaltSecret:
    """Holds the active salt secret; `current()` is cheap and thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._secret = self._read()

    @property
    def source(self) -> Path | None:
        """The file the secret is read from (configured or development-generated), if any."""
        if self.settings.salt_secret is not None:
            return None
        if self.settings.salt_secret_file is not None:
            return self.settings.salt_secret_file
        return self.settings.data_dir / "dev-salt-secret"

    def _read(self) -> bytes:
        if self.settings.salt_secret is not None:
            return self.settings.salt_secret.get_secret_value().encode("utf-8")
        if self.settings.salt_secret_file is not None:
            try:
                value = check_secret_file(self.settings.salt_secret_file, strict=self.settings.is_production)
            except ValueError as exc:
                raise ConfigError(f"configuration error: {exc}") from None
            return value.encode("utf-8")
        return dev_secret(self.settings, "salt-secret").encode("utf-8")

    def current(self) -> bytes:
        return self._secret

    @property
    def fingerprint(self) -> str:
        return fingerprint(self._secret)

    @property
    def description(self) -> str:
        """Where the secret comes from, for operators (never the secret itself)."""
        if self.settings.salt_secret is not None:
            return "SIGNALS_SALT_SECRET (environment; restart to rotate)"
        if self.settings.salt_secret_file is not None:
            return f"SIGNALS_SALT_SECRET_FILE {self.settings.salt_secret_file}"
        return f"development secret generated in {self.source}"

    def reload(self) -> tuple[str, str] | None:
        """Re-read the source; return (old, new) fingerprints when the secret changed.

        A secret the start-up checks would refuse (unreadable, empty, weak in production)
        raises `ConfigError` and the active secret stays in place."""
        new = self._read()
        with self._lock:
            if new == self._secret:
                return None
            old, self._secret = self._secret, new
        return fingerprint(old), fingerprint(new)
