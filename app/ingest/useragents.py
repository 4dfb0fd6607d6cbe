"""User-Agent parsing and the bot check, each behind a bounded LRU cache.

- Browser and OS: ua-parser, on its fastest resolver (the `ua-parser-rs` accelerator).
- Device class (mobile | tablet | desktop | other): the rules of `user-agents`, fed with the
  ua-parser result above. `user_agents.parse()` would parse the string again on ua-parser's
  slow legacy path (~1 ms per new string); feeding it the parsed result costs microseconds
  and gives the same answer.
- Bots: `crawlerdetect` (Python port of CrawlerDetect), plus ua-parser's own `Spider` device.
  crawlerdetect matches ~1,460 patterns as one Python alternation, ~200 us per new string;
  `CrawlerMatcher` runs the same patterns (after the same exclusions) on ua-parser-rs's
  Rust regex set, ~30 us, and falls back to crawlerdetect itself if that cannot be built.
  tests/test_ingest_parts.py checks both agree on every literal crawler pattern.

Real traffic repeats UA strings, adversarial traffic does not: both caches are bounded
(`SIGNALS_UA_CACHE_SIZE` entries each) and only the first `UA_MAX_CHARS` characters count.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import ua_parser
from crawlerdetect import CrawlerDetect
from crawlerdetect.crawlerdetect import get_compiled_exclusions_regex
from crawlerdetect.providers.crawlers import data as CRAWLER_PATTERNS
from user_agents.parsers import UserAgent, parse_browser, parse_device, parse_operating_system

from app.privacy.hashing import normalised_user_agent

UA_MAX_CHARS = 512
FAMILY_MAX_CHARS = 64  # the width of the browser_family / os_family columns


@dataclass(frozen=True, slots=True)
class ClientAgent:
    """What is kept of a User-Agent string: never the string itself."""

    browser_family: str
    browser_major: str
    os_family: str
    device_type: str  # mobile | tablet | desktop | other
    spider: bool  # ua-parser recognised a crawler

    @property
    def normalised(self) -> str:
        return normalised_user_agent(self.browser_family, self.browser_major, self.os_family)


def _user_agent(ua_string: str, result: ua_parser.DefaultedResult) -> UserAgent:
    """`user_agents.UserAgent` over an existing ua-parser result: its constructor would parse
    again on ua-parser's slow legacy path, so its attributes are set from `result` instead."""
    agent = UserAgent.__new__(UserAgent)
    ua, os_, device = result.user_agent, result.os, result.device
    agent.ua_string = ua_string
    agent.os = parse_operating_system(os_.family, os_.major, os_.minor, os_.patch, os_.patch_minor)
    agent.browser = parse_browser(ua.family, ua.major, ua.minor, ua.patch, ua.patch_minor)
    agent.device = parse_device(device.family, device.brand, device.model)
    return agent


def device_type(parsed: UserAgent) -> str:
    if parsed.is_tablet:
        return "tablet"
    if parsed.is_mobile:
        return "mobile"
    if parsed.is_pc:
        return "desktop"
    return "other"


_LOOKAROUND = re.compile(r"\(\?<?[!=]")  # Rust's regex has no look-around: those few stay in Python


@functools.cache  # built once per process (~0.4 s)
def crawler_matcher() -> Callable[[str], bool]:
    """`is_crawler(ua)` with crawlerdetect's exclusions and patterns, on a Rust regex set."""
    try:
        import ua_parser_rs

        rust_patterns = [p for p in CRAWLER_PATTERNS if not _LOOKAROUND.search(p)]
        python_patterns = [p for p in CRAWLER_PATTERNS if _LOOKAROUND.search(p)]
        rust = ua_parser_rs.DeviceExtractor([(p, "i", "crawler", None, None) for p in rust_patterns])
        python = re.compile("|".join(python_patterns) or "(?!)", re.IGNORECASE)
    except (ImportError, ValueError):  # no accelerator, or a pattern it cannot compile
        detector = CrawlerDetect()
        return lambda ua_string: bool(detector.is_crawler(ua_string))
    exclusions = get_compiled_exclusions_regex()

    def is_crawler(ua_string: str) -> bool:
        agent = exclusions.sub("", ua_string.strip())
        return bool(agent) and (rust.extract(agent) is not None or python.search(agent) is not None)

    return is_crawler


def _clip(ua_string: str | None) -> str:
    return (ua_string or "").strip()[:UA_MAX_CHARS]


class UserAgentInspector:
    """`parse(ua)` and `is_bot(ua)`, each with its own LRU cache of `cache_size` entries."""

    def __init__(self, cache_size: int) -> None:
        resolver = ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins())
        self._parser = ua_parser.Parser(resolver)  # no inner cache: ours below is the only one
        self._is_crawler = crawler_matcher()
        self._parse = functools.lru_cache(maxsize=cache_size)(self._parse_uncached)
        self._is_bot = functools.lru_cache(maxsize=cache_size)(self._is_bot_uncached)

    def _parse_uncached(self, ua_string: str) -> ClientAgent:
        result = self._parser.parse(ua_string).with_defaults()
        return ClientAgent(
            browser_family=result.user_agent.family[:FAMILY_MAX_CHARS],
            browser_major=(result.user_agent.major or "")[:16],
            os_family=result.os.family[:FAMILY_MAX_CHARS],
            device_type=device_type(_user_agent(ua_string, result)),
            spider=result.device.family == "Spider",
        )

    def _is_bot_uncached(self, ua_string: str) -> bool:
        if not ua_string:
            return True  # no User-Agent at all: a script, not a person's browser
        return self.parse(ua_string).spider or self._is_crawler(ua_string)

    def parse(self, ua_string: str | None) -> ClientAgent:
        return self._parse(_clip(ua_string))

    def is_bot(self, ua_string: str | None) -> bool:
        return self._is_bot(_clip(ua_string))

    def cache_info(self) -> dict[str, object]:
        return {"parse": self._parse.cache_info(), "is_bot": self._is_bot.cache_info()}
