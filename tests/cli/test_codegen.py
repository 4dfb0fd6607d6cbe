"""`signals codegen`: the allowlists as TypeScript unions, written as the operator configured
them. (That the output type-checks and rejects misspelled names: tests/clients/test_react.py.)"""

from __future__ import annotations

import re
from pathlib import Path

from testkit.processes import signals


def unions(source: str) -> dict[str, list[str] | None]:
    """constant -> its names, or None when written as "any name" (recomputed from the text)."""
    found: dict[str, list[str] | None] = {}
    for constant, body in re.findall(r"export const (\w+) = \[(.*?)\] as const;", source):
        found[constant] = re.findall(r'"([^"]*)"', body)
    for constant in re.findall(r"export const (\w+): readonly string\[\] = \[\];", source):
        found[constant] = None
    return found


def test_writes_each_allowlist_as_a_union_and_registers_it(tmp_path: Path) -> None:
    out = tmp_path / "web" / "src" / "events.ts"
    done = signals(
        "codegen",
        "--out",
        str(out),
        SIGNALS_ALLOWED_APPS="admin-console",
        SIGNALS_ALLOWED_EVENT_TYPES="export, route_view,export",
        SIGNALS_ALLOWED_ENTITY_TYPES="",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {out} (1 AppName, 3 EventType, any EntityType)"
    source = out.read_text()
    assert unions(source) == {
        "APP_NAMES": ["admin-console"],
        "EVENT_TYPES": ["export", "route_view"],
        "ENTITY_TYPES": None,
    }
    assert "export type EntityType = string;" in source  # not set: any name
    assert 'declare module "@signals/react" {' in source and "types: SignalsNames;" in source
    assert not list(out.parent.glob(".events.ts.*"))  # the temporary file was renamed


def test_standard_output_and_options(tmp_path: Path) -> None:
    done = signals("codegen", "--out", "-", "--no-register", SIGNALS_ALLOWED_EVENT_TYPES="a.b:c-d")
    assert done.returncode == 0, done.stderr
    assert unions(done.stdout)["EVENT_TYPES"] == ["a.b:c-d"] and "declare module" not in done.stdout
    other = signals("codegen", "--out", "-", "--module", "@acme/signals")
    assert 'declare module "@acme/signals"' in other.stdout


def test_an_unwritable_target_is_one_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = signals("codegen", "--out", str(blocker / "events.ts"))
    assert done.returncode == 1 and done.stderr.startswith("codegen: cannot write") and done.stderr.count("\n") == 1
