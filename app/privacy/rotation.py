"""Rotating the salt secret without a restart: SIGHUP, or a change of the secret file.

`SecretWatcher` runs inside the server's lifespan. On SIGHUP, or when the content of the
secret file has changed and then stayed the same for one poll interval (so a half-written
file is never taken), it calls `SaltSecret.reload()`. A secret the start-up checks would
refuse (empty, unreadable, weak in production) is refused: the active secret stays and
an error is logged. Logs carry fingerprints only, never the secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from pathlib import Path

from app.config import ConfigError
from app.logs import get_logger
from app.privacy.secret import SaltSecret

log = get_logger("signals.secrets")


class SecretWatcher:
    def __init__(self, salt_secret: SaltSecret, poll_seconds: float) -> None:
        self.salt_secret = salt_secret
        self.poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self._sighup = False

    def reload(self, trigger: str) -> bool:
        """Re-read the secret now; True when a new secret became active."""
        try:
            change = self.salt_secret.reload()
        except ConfigError as exc:
            log.error(
                "salt secret rotation refused; the active secret stays",
                trigger=trigger,
                reason=str(exc).removeprefix("configuration error: "),
                active_fingerprint=self.salt_secret.fingerprint,
            )
            return False
        if change is None:
            log.info("salt secret unchanged", trigger=trigger, fingerprint=self.salt_secret.fingerprint)
            return False
        old, new = change
        log.warning("salt secret rotated", trigger=trigger, old_fingerprint=old, new_fingerprint=new)
        return True

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            loop.add_signal_handler(signal.SIGHUP, self.reload, "sighup")
            self._sighup = True
        path = self.salt_secret.source
        if path is not None and self.poll_seconds > 0:
            self._task = asyncio.create_task(self._poll(path, _read_bytes(path)), name="salt-secret-watch")

    async def stop(self) -> None:
        if self._sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._sighup = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self, path: Path, seen: bytes | None) -> None:
        candidate: bytes | None = None
        while True:
            await asyncio.sleep(self.poll_seconds)
            content = _read_bytes(path)
            if content == seen:
                candidate = None
            elif content == candidate:  # changed, then unchanged for one interval: settled
                seen, candidate = content, None
                self.reload("file-change")
            else:
                candidate = content


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
