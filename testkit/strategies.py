"""Hypothesis strategies for hostile input, shared by the property tests.

Every property states behaviour, not a hard-coded output: what may be accepted, what must be
refused, what the resolved IP may be, what the privacy hash must and must not reveal. The
strategies lean towards hostile input: arbitrary JSON, odd Unicode, lone control characters,
100 KB strings, 500-deep (and deeper) nesting, scoped/mapped/bracketed IPs, garbage in
X-Forwarded-For, binary-ish User-Agent strings.

`props` runs each property derandomized (a fixed seed per test, no example database) so the
suite does not flake; `@example` pins the inputs random generation rarely reaches.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st


def props(max_examples: int) -> settings:
    """Bounded, deterministic: all the property tests together stay well under 20 s on two cores."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None)


NO_SURROGATES = st.characters(blacklist_categories=("Cs",))
ODD_CHARS = st.sampled_from(
    [
        "\x00", "\x01", "\x1f", "\x7f", "\x85", "\x9f", "\u00a0", "\u200b", "\u200d", "\u2028", "\u2029",
        "\u202e", "\u2066", "\ufeff", "\ufffd", "\uffff", "\U0001f600", "\U0001f1fa", "\u0301",
        "\u0130", "\u0131", "\u00df", "\u017f", "\u212a", "\uff45", "\U0001d41e", "\u0663", "\u4e2d",
        "@", "/", "?", "#", "%", ":", "[", "]", ",", ";", '"', "\\", " ", "\t", "\n", "\r",
    ]
)  # fmt: skip


def odd_strings(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    """Unicode without lone surrogates, heavy on controls, invisibles, confusables, delimiters."""
    return st.text(st.one_of(NO_SURROGATES, ODD_CHARS), min_size=min_size, max_size=max_size)


odd_text = odd_strings()
lone_control = st.sampled_from([chr(c) for c in [*range(0x20), 0x7F]])
surrogate_text = st.builds(
    lambda a, s, b: a + s + b, odd_text, st.sampled_from(["\ud800", "\udfff", "\udc80"]), odd_text
)
huge_text = st.builds(  # 20-100 K repetitions: up to ~400 KB of UTF-8
    lambda chunk, n: chunk * n, st.sampled_from(["x", "é", "\U0001f600", "a@b.io ", "/"]), st.integers(20_000, 100_000)
)
