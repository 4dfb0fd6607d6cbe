"""User-Agent inspection: the device class, browser and OS families, bots, bounded caches,
and the fast crawler matcher against crawlerdetect itself."""

from __future__ import annotations

import pytest
import user_agents

from app.ingest.useragents import UserAgentInspector, device_type
from testkit.agents import AGENTS


@pytest.mark.parametrize("ua", AGENTS)
def test_device_type_matches_user_agents_own_parse(ua: str) -> None:
    """Feeding user-agents the ua-parser-rs result gives the same device class as letting
    it parse the string itself on ua-parser's slow legacy path."""
    assert UserAgentInspector(8).parse(ua).device_type == device_type(user_agents.parse(ua))


def test_classification_and_bots() -> None:
    inspector = UserAgentInspector(cache_size=4)
    iphone, ipad, windows = (inspector.parse(ua) for ua in AGENTS[:3])
    assert (iphone.device_type, ipad.device_type, windows.device_type) == ("mobile", "tablet", "desktop")
    assert windows.normalised == "Chrome|120|Windows"
    for bot in ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "curl/8.4.0",
                "python-requests/2.31", "", None, "   "):  # fmt: skip
        assert inspector.is_bot(bot), bot
    assert not any(inspector.is_bot(ua) for ua in AGENTS)


def test_caches_are_bounded() -> None:
    inspector = UserAgentInspector(cache_size=16)
    for n in range(100):
        inspector.parse(f"{AGENTS[2]} build/{n}")
        inspector.is_bot(f"{AGENTS[2]} build/{n}")
    info = inspector.cache_info()
    assert info["parse"].currsize == 16 and info["is_bot"].currsize == 16  # type: ignore[attr-defined]


def literal_crawler_names() -> list[str]:
    from crawlerdetect.providers.crawlers import data

    names = []
    for pattern in data:
        text = pattern.replace("\\/", "/").replace("\\.", ".").replace("\\-", "-").replace("\\ ", " ")
        if not any(c in text for c in "^$()[]{}|*+?\\"):
            names.append(text)
    return names


def test_the_fast_crawler_matcher_agrees_with_crawlerdetect() -> None:
    from crawlerdetect import CrawlerDetect

    from app.ingest.useragents import crawler_matcher

    fast, reference = crawler_matcher(), CrawlerDetect()
    names = literal_crawler_names()
    assert len(names) > 1000
    samples = [f"Mozilla/5.0 (compatible; {n}/2.1; +https://example.com/bot)" for n in names]
    samples += [f"  {n}  " for n in names] + AGENTS + [f"{AGENTS[2]} Edg/{n}.0" for n in range(50)]
    samples += [
        "YandexBot/3.0",
        "Mozilla/5.0 (compatible; YandexSearch/1.0)",
        "Mozilla/5.0 (Linux; Android 9; CUBOT X19)",
        "",
        " ",
    ]
    disagreements = [s for s in samples if fast(s) != reference.is_crawler(s)]
    assert disagreements == []
    assert sum(map(fast, samples)) > 1000  # most samples are bots: the test can tell them apart
