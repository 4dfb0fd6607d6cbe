"""Properties (hypothesis) of User-Agent inspection: parsing never raises and stays in its
vocabulary, cached and uncached answers agree, real browsers are people and crawlers bots."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.ingest.useragents import FAMILY_MAX_CHARS, UA_MAX_CHARS, BotClass, ClientAgent, UserAgentInspector
from testkit.agents import AGENTS
from testkit.strategies import NO_SURROGATES, huge_text, odd_text, props

REAL_AGENTS = AGENTS[:7]  # phones, tablets, desktops of the unit tests
BOT_AGENTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.4.0",
    "python-requests/2.31",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
]
DEVICE_TYPES = {"mobile", "tablet", "desktop", "other"}

user_agents = st.one_of(
    st.sampled_from(REAL_AGENTS + BOT_AGENTS + ["", " ", "\t", "-", "Mozilla/5.0", "Mozilla/5.0 ()"]),
    st.builds(lambda ua, junk: ua + junk, st.sampled_from(REAL_AGENTS + BOT_AGENTS), odd_text),
    st.builds(lambda junk, ua: junk + ua, odd_text, st.sampled_from(REAL_AGENTS)),
    st.builds(lambda ua, n: " ".join([ua] * n), st.sampled_from(REAL_AGENTS), st.integers(2, 1_000)),  # huge
    st.binary(max_size=200).map(lambda raw: raw.decode("latin-1")),  # what ASGI makes of arbitrary header bytes
    st.text(NO_SURROGATES, max_size=200),
    odd_text,
    huge_text,
)
CACHED = UserAgentInspector(cache_size=4096)
UNCACHED = UserAgentInspector(cache_size=0)


@props(150)
@given(st.one_of(st.none(), user_agents))
def test_user_agent_parsing_never_raises_and_stays_in_its_vocabulary(ua: str | None) -> None:
    agent = CACHED.parse(ua)
    assert isinstance(agent, ClientAgent)
    assert agent.device_type in DEVICE_TYPES
    for family in (agent.browser_family, agent.os_family):
        assert isinstance(family, str) and 0 < len(family) <= FAMILY_MAX_CHARS
    assert isinstance(agent.browser_major, str) and len(agent.browser_major) <= 16
    assert agent.normalised == f"{agent.browser_family}|{agent.browser_major}|{agent.os_family}"
    bot_class = CACHED.bot_class(ua)
    assert bot_class is None or isinstance(bot_class, BotClass)
    if not (ua or "").strip():
        assert bot_class is BotClass.LIBRARY  # no User-Agent: a script


@props(150)
@given(user_agents)
def test_user_agent_results_are_stable_with_and_without_cache(ua: str) -> None:
    first, bot = CACHED.parse(ua), CACHED.bot_class(ua)
    assert CACHED.parse(ua) == first and CACHED.bot_class(ua) == bot  # from the cache
    assert UNCACHED.parse(ua) == first and UNCACHED.bot_class(ua) == bot  # computed afresh
    clipped = ua.strip()[:UA_MAX_CHARS]  # only the first UA_MAX_CHARS characters count
    assert UNCACHED.parse(clipped + " junk/1.0" * (len(clipped) >= UA_MAX_CHARS)) == first


@props(60)
@given(st.sampled_from(REAL_AGENTS), st.sampled_from(BOT_AGENTS))
def test_real_browsers_are_people_and_crawlers_are_bots(browser: str, bot: str) -> None:
    assert not UNCACHED.is_bot(browser)
    assert UNCACHED.parse(browser).device_type != "other"
    assert UNCACHED.is_bot(bot)
