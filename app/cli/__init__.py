"""The `signals` command and the composition root (`serve` builds and wires the app)."""

from app.cli.main import main

__all__ = ["main"]
