"""User-Agent parsing and the bot check, each behind a bounded LRU cache.

- Browser and OS: ua-parser, on its fastest resolver (the `ua-parser-rs` accelerator).
- Device class (mobile | tablet | desktop | other): the rules of `user-agents`, fed with the
  ua-parser result above. `user_agents.parse()` would parse the string again on ua-parser's
  slow legacy path (~1 ms per new string); feeding it the parsed result costs microseconds
  and gives the same answer.
- Bots: `crawlerdetect` (Python port of CrawlerDetect), plus ua-parser's own `Spider` device.

Real traffic repeats UA strings, adversarial traffic does not: both caches are bounded
(`SIGNALS_UA_CACHE_SIZE` entries each) and only the first `UA_MAX_CHARS` characters count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import ua_parser
from crawlerdetect import CrawlerDetect
from user_agents.parsers import UserAgent, parse_browser, parse_device, parse_operating_system

from app.hashing import normalised_user_agent

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


class _ParsedUserAgent(UserAgent):
    """`user_agents.UserAgent` over an existing ua-parser result (skips its own parse)."""

    def __init__(self, ua_string: str, result: ua_parser.DefaultedResult) -> None:  # noqa: D107 - no super(): it would re-parse
        ua, os_, device = result.user_agent, result.os, result.device
        self.ua_string = ua_string
        self.os = parse_operating_system(os_.family, os_.major, os_.minor, os_.patch, os_.patch_minor)
        self.browser = parse_browser(ua.family, ua.major, ua.minor, ua.patch, ua.patch_minor)
        self.device = parse_device(device.family, device.brand, device.model)


def device_type(parsed: UserAgent) -> str:
    if parsed.is_tablet:
        return "tablet"
    if parsed.is_mobile:
        return "mobile"
    if parsed.is_pc:
        return "desktop"
    return "other"


def _clip(ua_string: str | None) -> str:
    return (ua_string or "").strip()[:UA_MAX_CHARS]


class UserAgentInspector:
    """`parse(ua)` and `is_bot(ua)`, each with its own LRU cache of `cache_size` entries."""

    def __init__(self, cache_size: int) -> None:
        resolver = ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins())
        self._parser = ua_parser.Parser(resolver)  # no inner cache: ours below is the only one
        self._crawlers = CrawlerDetect()
        self._parse = functools.lru_cache(maxsize=cache_size)(self._parse_uncached)
        self._is_bot = functools.lru_cache(maxsize=cache_size)(self._is_bot_uncached)

    def _parse_uncached(self, ua_string: str) -> ClientAgent:
        result = self._parser.parse(ua_string).with_defaults()
        return ClientAgent(
            browser_family=result.user_agent.family[:FAMILY_MAX_CHARS],
            browser_major=(result.user_agent.major or "")[:16],
            os_family=result.os.family[:FAMILY_MAX_CHARS],
            device_type=device_type(_ParsedUserAgent(ua_string, result)),
            spider=result.device.family == "Spider",
        )

    def _is_bot_uncached(self, ua_string: str) -> bool:
        if not ua_string:
            return True  # no User-Agent at all: a script, not a person's browser
        return self.parse(ua_string).spider or self._crawlers.is_crawler(ua_string)

    def parse(self, ua_string: str | None) -> ClientAgent:
        return self._parse(_clip(ua_string))

    def is_bot(self, ua_string: str | None) -> bool:
        return self._is_bot(_clip(ua_string))

    def cache_info(self) -> dict[str, object]:
        return {"parse": self._parse.cache_info(), "is_bot": self._is_bot.cache_info()}
