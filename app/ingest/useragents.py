"""User-Agent parsing and the bot filter, each behind a bounded LRU cache.

- Browser and OS: ua-parser, on its fastest resolver (the `ua-parser-rs` accelerator).
- Device class (mobile | tablet | desktop | other): the rules of `user-agents`, fed with the
  ua-parser result above. `user_agents.parse()` would parse the string again on ua-parser's
  slow legacy path (~1 ms per new string); feeding it the parsed result costs microseconds
  and gives the same answer.
- Bots (`BotDetector`, chosen on the public corpus in bench/corpus/ by bench/bots.py):
  1. no User-Agent at all is a script (class `library`);
  2. the operator's allow patterns (`SIGNALS_BOT_ALLOW_PATTERNS`) make a person, then the
     operator's deny patterns (`SIGNALS_BOT_DENY_PATTERNS`) a bot;
  3. the tokens of clients people use that the crawler lists mistake for bots are removed
     (`PERSON_TOKENS`: Office and Outlook, Slack's Electron shell, text browsers, CFNetwork
     apps, Firefox's MozacFetch, an Android device's model name, a TV's HbbTV block ...);
     a string that was nothing but such tokens is a person;
  4. what is left is matched against, in this order (the first match gives the class):
     our own rules (`OWN_RULES`: automation and headless markers, AI agents, monitors and
     synthetic checks, HTTP libraries), the `crawler-user-agents` patterns (class from their
     tags), Matomo Device Detector's bot and library regexes (class from their category),
     then crawlerdetect's patterns after its own exclusions (class `crawler`).
  All of it runs as two Rust regex sets (ua-parser-rs), linear in the string's length
  whatever it holds; the few patterns with look-around, which Rust's regex lacks, run on
  Python's `re`.

Real traffic repeats UA strings, adversarial traffic does not: both caches are bounded
(`SIGNALS_UA_CACHE_SIZE` entries each) and only the first `UA_MAX_CHARS` characters count.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

import regex
import ua_parser
import yaml
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as CRAWLER_PATTERNS
from user_agents.parsers import UserAgent, parse_browser, parse_device, parse_operating_system

from app.privacy.hashing import normalised_user_agent

UA_MAX_CHARS = 512
FAMILY_MAX_CHARS = 64  # the width of the browser_family / os_family columns


class BotClass(enum.Enum):
    """The coarse kind of a dropped bot: a metric label, never stored with an event."""

    CRAWLER = "crawler"  # search, SEO, social previews, feed fetchers, archivers, scanners, schedulers
    AUTOMATION = "automation"  # headless and driven browsers: Playwright, Selenium, Cypress, Puppeteer
    MONITOR = "monitor"  # uptime, health and synthetic checks, metrics scrapers
    LIBRARY = "library"  # HTTP libraries and runtimes: curl, python-requests, okhttp, node, undici
    AI_AGENT = "ai-agent"  # AI crawlers, assistants and their SDKs: GPTBot, Claude-User, Perplexity-User


@dataclass(frozen=True, slots=True)
class ClientAgent:
    """What is kept of a User-Agent string: never the string itself."""

    browser_family: str
    browser_major: str
    os_family: str
    device_type: str  # mobile | tablet | desktop | other

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


# --- the bot rules ----------------------------------------------------------------------------

# Tokens of clients people use, removed before the bot patterns look at a string: (a literal
# the string must contain, the token). Each is narrow enough that a bot's own name survives
# it (`Slack/4.38` goes, `Slackbot` stays).
PERSON_TOKENS: list[tuple[str, str]] = [
    ("Microsoft", r"Microsoft Office(?: [A-Za-z]+)?(?:/[\d.]+)?"),  # "Microsoft Office Excel/16.80 (Mac OS/14.0; ...)"
    ("Microsoft", r"Microsoft (?:Outlook|Word|Excel|PowerPoint|OneNote|Lync|Office SyncProc)(?: [\d.]+)?"),
    ("ms-office", r"\bms-office\b"),
    ("MSOffice", r"\bMSOffice \d+"),
    ("officemobile", r"\bofficemobile [\d.]+"),
    ("Outlook-", r"\bOutlook-(?:iOS|Android)/\S+"),
    ("Sonic", r"\bSonic(?= Slack_SSB/)"),  # before the Slack token, which removes what it looks for
    ("Slack", r"\bSlack(?:_SSB)?/[\d.]+"),  # Slack's desktop app (Electron); Slackbot has no slash after "Slack"
    ("Lynx", r"\bLynx/\S+"),  # text browsers and the libraries they are built on
    ("libwww", r"\blibwww-FM/\S+"),
    ("libwww", r"\bamaya/\S+ libwww/\S+"),
    ("MozacFetch", r"\bMozacFetch/[\d.]+"),  # Firefox for Android's own fetch library
    ("AndroidDownloadManager", r"\bAndroidDownloadManager/[\d.]+"),
    ("PodcastAddict", r"\bPodcastAddict/v\d+"),
    ("VLC/", r"\b(?:\w+_)?(?:Lib)?VLC/[\d.]+"),
    ("QQDownload", r"\bQQDownload \d+"),  # a toolbar's token in old Internet Explorer strings
    ("Sogou", r"\bSogou(?:MSE|MobileBrowser|Search|SE)\S*"),  # Sogou's browsers, not its spider
    ("Cronet", r"\bCronet(?:/[\d.]+)?"),  # Chrome's network stack inside Android apps
    ("Viber/", r"(?<=Safari/537\.36 )Viber/[\d.]+"),  # apps' in-app WebViews
    ("Blackboard/", r"(?<=Safari/537\.36 )Blackboard/[\d.]+"),
    # an app's own requests through Apple's CFNetwork, unless the app's name says what it is
    (
        "CFNetwork/",
        r"(?i:(?<![^ ])(?![^/ ]*(?:bot|crawl|spider|extractor|tester|downloader|scan))[^/ ]+/\S+ "
        r"CFNetwork/[\d.]+ Darwin/[\d.]+)",
    ),
    # an Android device's model (and build) name: "Spider 8", "C Bot Tab 100", "SMART 4G Speedy"
    ("Android ", r"\bAndroid [\d.]+;(?: [a-z]{2}[-_][A-Za-z]{2};)? [^;)]*(?:; Build/[^;)]*)?"),
    ("HbbTV/", r"\bHbbTV/[\d.]+ \([^)]*\)"),  # a TV's HbbTV block names its maker: "(+DRM; LGE/KTC/BOTECH; ...)"
]

# Our own rules, checked before the lists so that the class is the specific one.
OWN_RULES: list[tuple[BotClass, str]] = [
    (
        BotClass.AUTOMATION,
        r"Headless|PhantomJS|SlimerJS|Playwright|Puppeteer|Selenium|WebDriver|Cypress/|Nightmare|"
        r"HtmlUnit|jsdom/|CasperJS|Zombie\.js|Electron/[\d.]+ \(?Automation|\bsplash\b|"
        r"Manus-User|Devin/|GoogleAgent|Google-Agent|AgentCore-Browser|AmazonBuyForMe",
    ),
    (
        BotClass.AI_AGENT,
        r"anthropic-ai|Claude-(?:User|Web|SearchBot)|ClaudeBot|GPTBot|ChatGPT-(?:User|Agent)|OAI-SearchBot|"
        r"OpenAI/|Perplexity-?(?:User|Bot)|meta-external(?:agent|fetcher)|Google-Extended|Google-NotebookLM|"
        r"Gemini-Deep-Research|Bytespider|CCBot|cohere-(?:ai|training)|Amzn-User|Applebot-Extended|"
        r"DuckAssistBot|MistralAI-User|YouBot|AI2Bot|Ai2Bot|Diffbot|Timpibot|ImagesiftBot|"
        r"Cloudflare-AutoRAG|laion-huggingface|bigsur\.ai|newsai/|Anomura/|semantic-visions",
    ),
    (
        BotClass.MONITOR,
        r"Datadog|Prometheus/|Blackbox Exporter|Splunk|Pingdom|UptimeRobot|StatusCake|Site24x7|"
        r"NewRelicPinger|New Relic Synthetics|kube-probe|HealthChecker|Health ?Check|GoogleHC/|Zabbix|"
        r"Nagios|check_http|Uptime-Kuma|Better ?Uptime|Checkly|Catchpoint|ThousandEyes|Grafana/|collectd/|"
        r"Oh Dear|Route 53|Cloudflare-(?:diagnostics|Traffic-Manager|Smart-Transit)|CloudflareDiagnostics|"
        r"\bMonitor(?:ing)?\b|WebMon/|rocketmonitor|Dynatrace|AppDynamics|Gomez|Synthetic",
    ),
    (
        BotClass.LIBRARY,
        r"^(?:node|undici|Node\.js|Deno/|Bun/|axios/|got |node-fetch|python|Python|Go |Java|Ruby|PHP|curl|"
        r"Wget|okhttp|HTTPie|Dart/|reqwest|hyper/|ureq/|rest-client|Faraday|Typhoeus|Guzzle|Symfony|"
        r"Apache-HttpClient|PostmanRuntime|insomnia|RestSharp|aiohttp|libwww-perl|LWP::|lwp-|grpc-)|"
        r"python-requests|python-urllib|Python-urllib|python-httpx|aiohttp/|httplib2|Go-http-client|"
        r"Java-http-client|Apache-HttpClient|\bokhttp|node-fetch|\bundici\b|\baxios/|rest-client/|"
        r"grpc-(?:java|go|node|python|dotnet|c\b|ruby)|PowerShell/|WinHttp|libcurl|\bcurl/|\bWget/",
    ),
]

# crawler-user-agents tags -> class (the first tag found in this order wins; else crawler)
CUA_TAG_CLASSES = [
    ("ai-crawler", BotClass.AI_AGENT),
    ("browser-automation", BotClass.AUTOMATION),
    ("monitoring", BotClass.MONITOR),
    ("http-library", BotClass.LIBRARY),
]
# Matomo bot categories -> class (AI categories -> ai-agent; anything else -> crawler)
MATOMO_CATEGORY_CLASSES = {
    "Site Monitor": BotClass.MONITOR,
    "Network Monitor": BotClass.MONITOR,
    "Benchmark": BotClass.MONITOR,
}
# Matomo `library` clients that are a platform's own stack on a person's device
MATOMO_PERSON_LIBRARIES = frozenset(
    {
        "Apple Core Media",
        "Safari View Service",
        "KaiOS Downloader",
        "MatomoTracker",
        "BIC Tracker",
        "Android License Verification Library",
        "Emacs",
    }
)
# Matomo wraps every regex so that it starts at a word boundary of its own definition
_MATOMO_WRAP = r"(?:^|[^A-Z0-9_\-])(?:{})"
_MATOMO_WORD_RUN = "[a-z0-9_-]*"


def _matomo_pattern(pattern: str) -> str:
    """Matomo's regex as Matomo matches it. A regex that starts with a run of word characters
    needs no wrap: case-insensitively that run and the wrap's class are complements, so the
    wrap and the run match in front of any position (and dropping both saves backtracking)."""
    if pattern.startswith(_MATOMO_WORD_RUN) and pattern[len(_MATOMO_WORD_RUN)] == "(" and pattern.endswith(")"):
        return pattern[len(_MATOMO_WORD_RUN) :]
    return _MATOMO_WRAP.format(pattern)


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: str
    klass: BotClass
    case_insensitive: bool = True


def crawler_user_agents_rules() -> list[Rule]:
    """The `crawler-user-agents` patterns (case-sensitive, as that project matches them)."""
    text = resources.files("crawleruseragents").joinpath("crawler-user-agents.json").read_text(encoding="utf-8")
    rules = []
    for entry in json.loads(text):
        tags = entry.get("tags") or []
        klass = next((k for tag, k in CUA_TAG_CLASSES if tag in tags), BotClass.CRAWLER)
        rules.append(Rule(entry["pattern"], klass, case_insensitive=False))
    return rules


def _matomo_yaml(path: str) -> list[dict[str, Any]]:
    text = resources.files("device_detector").joinpath("regexes", "upstream", *path.split("/")).read_bytes()
    loaded: list[dict[str, Any]] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return loaded


def matomo_rules() -> list[Rule]:
    """Matomo Device Detector's bot regexes, and its feed-reader and HTTP-library client regexes
    (feed readers poll on a timer: nobody is looking at a page)."""
    rules = []
    for entry in _matomo_yaml("bots.yml"):
        category = entry.get("category") or ""
        klass = BotClass.AI_AGENT if category.startswith("AI ") else MATOMO_CATEGORY_CLASSES.get(category)
        rules.append(Rule(_matomo_pattern(entry["regex"]), klass or BotClass.CRAWLER))
    for entry in _matomo_yaml("client/feed_readers.yml"):
        rules.append(Rule(_matomo_pattern(entry["regex"]), BotClass.CRAWLER))
    for entry in _matomo_yaml("client/libraries.yml"):
        if entry.get("name") not in MATOMO_PERSON_LIBRARIES:
            rules.append(Rule(_matomo_pattern(entry["regex"]), BotClass.LIBRARY))
    return rules


def own_rules() -> list[Rule]:
    return [Rule(pattern, klass) for klass, pattern in OWN_RULES]


_LOOKAROUND_OPENERS = ("(?=", "(?!", "(?<=", "(?<!")


def _syntax(pattern: str) -> Iterator[tuple[int, str, int]]:
    """(index, character, group depth) of each character of `pattern` that is regex syntax:
    escapes and character classes are skipped; a ")" has the depth of its "("."""
    depth, i, in_class = 0, 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        else:
            depth -= ch == ")"
            yield i, ch, depth
            depth += ch == "("
        i += 1


def _group_end(pattern: str, start: int) -> int:
    """The index just past the group opened at `start`."""
    opened = None
    for i, ch, depth in _syntax(pattern):
        if i == start:
            opened = depth
        elif opened is not None and ch == ")" and depth == opened:
            return i + 1
    raise ValueError(f"unbalanced group in {pattern!r}")


def _replace_groups(pattern: str, openers: tuple[str, ...], replace: Callable[[str], str]) -> str:
    """`pattern` with each outermost group that starts with one of `openers` replaced by
    `replace(group)`."""
    out, done = [], 0
    for i, ch, _ in _syntax(pattern):
        if i >= done and ch == "(" and pattern.startswith(openers, i):
            end = _group_end(pattern, i)
            out += [pattern[done:i], replace(pattern[i:end])]
            done = end
    return "".join(out) + pattern[done:]


def without_lookaround(pattern: str) -> str:
    """`pattern` with its look-around groups removed: it matches whatever `pattern` matches
    (and more), so it can stand in front of the original as a cheap necessary condition."""
    return _replace_groups(pattern, _LOOKAROUND_OPENERS, lambda _: "")


def split_lookbehinds(pattern: str) -> str:
    """`(?<!a|bc)` as `(?<!a)(?<!bc)`: the same test, and each part has the fixed width that
    Python's `re` needs (the alternation as a whole does not)."""

    def split(group: str) -> str:
        body = group[4:-1]
        cuts = [i for i, ch, depth in _syntax(body) if ch == "|" and depth == 0]
        parts = [body[a + 1 : b] for a, b in zip([-1, *cuts], [*cuts, len(body)], strict=True)]
        return "".join(f"(?<!{part})" for part in parts)

    return _replace_groups(pattern, ("(?<!",), split)


_LOOKBEHIND_BODY = r"((?:[^()\\]|\\.)*)"  # no groups inside; escapes allowed
_LOOKBEHINDS_THEN_WORD = re.compile(rf"((?:\(\?<!{_LOOKBEHIND_BODY}\))+)([A-Za-z]+)(?![?*+{{])")


def literal_first(pattern: str) -> str:
    """`(?<!cu)bot` as `bot(?<!cubot)`: the same test, but the branch starts with a literal,
    which lets `re` skip positions that cannot start it (~30% less on long strings)."""

    def move(found: re.Match[str]) -> str:
        word = found.group(found.lastindex or 0)
        behinds = re.findall(rf"\(\?<!{_LOOKBEHIND_BODY}\)", found.group(1))
        return word + "".join(f"(?<!{behind}{word})" for behind in behinds)

    return _LOOKBEHINDS_THEN_WORD.sub(move, pattern)


def _compile_lookaround(pattern: str, case_insensitive: bool) -> re.Pattern[str] | regex.Pattern[str]:
    """Python's `re` where it can (about twice as fast here), else the `regex` module."""
    try:
        return re.compile(literal_first(split_lookbehinds(pattern)), re.IGNORECASE if case_insensitive else 0)
    except re.error:  # a variable-width look-behind even after splitting
        return regex.compile(pattern, regex.IGNORECASE if case_insensitive else 0)


class RuleSet:
    """Ordered rules, first match wins: a Rust regex set for the patterns it can compile;
    the rest (look-around) on Python's `re`, or on the `regex` module for a variable-width
    look-behind, each behind a Rust prefilter of itself without look-around."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        import ua_parser_rs

        rust: list[tuple[str, Literal["i"] | None, str, None, None]] = []
        python: list[tuple[Any, re.Pattern[str] | regex.Pattern[str], BotClass]] = []
        for rule in rules:
            flags: Literal["i"] | None = "i" if rule.case_insensitive else None
            try:
                ua_parser_rs.DeviceExtractor([(rule.pattern, flags, rule.klass.value, None, None)])
            except ValueError:  # look-around
                prefilter = ua_parser_rs.DeviceExtractor([(without_lookaround(rule.pattern), flags, "", None, None)])
                python.append((prefilter, _compile_lookaround(rule.pattern, rule.case_insensitive), rule.klass))
            else:
                rust.append((rule.pattern, flags, rule.klass.value, None, None))
        self._rust = ua_parser_rs.DeviceExtractor(rust)
        self._python = python

    def match(self, text: str) -> BotClass | None:
        found = self._rust.extract(text)
        if found is not None:
            return BotClass(found.family)
        for prefilter, exact, klass in self._python:
            if prefilter.extract(text) is not None and exact.search(text):
                return klass
        return None


class BotDetector:
    """`classify(ua)`: the `BotClass` of a bot, or None for a person (see the module doc).
    The rules are compiled once per process (about two seconds) and shared."""

    def __init__(self) -> None:
        self._rules = _built_in_rules()
        self._crawler = crawler_matcher()

    def classify(self, ua_string: str) -> BotClass | None:
        ua_string = ua_string.strip()
        if not ua_string:
            return BotClass.LIBRARY  # no User-Agent at all: a script, not a person's browser
        return self._rules.classify(ua_string, self._crawler)


class _BuiltInRules:
    def __init__(self) -> None:
        self._person_tokens = [(literal, re.compile(token)) for literal, token in PERSON_TOKENS]
        self._rules = RuleSet(own_rules() + crawler_user_agents_rules() + matomo_rules())

    def classify(self, ua_string: str, is_crawler: Callable[[str], bool]) -> BotClass | None:
        text, stripped = ua_string, False
        for literal, token in self._person_tokens:
            if literal in text:  # a substring test first: most strings hold few of the literals
                text, found = token.subn(" ", text)
                stripped = stripped or found > 0
        if stripped and not any(ch.isalpha() for ch in text):
            return None  # nothing but the tokens of a person's client
        klass = self._rules.match(text)
        if klass is None and is_crawler(text):
            klass = BotClass.CRAWLER
        return klass


@functools.cache  # built once per process (~2 s)
def _built_in_rules() -> _BuiltInRules:
    return _BuiltInRules()


_LOOKAROUND = re.compile(r"\(\?<?[!=]")  # Rust's regex has no look-around: those few stay in Python
_LEADING_LITERAL = re.compile(r"(?:\\[/.]|[^\\.^$*+?()\[\]{}|])+")


def _exclusion_remover() -> Callable[[str], str]:
    """crawlerdetect's exclusions (browser tokens removed before its patterns look), as its
    one alternation would remove them, but only the alternatives whose leading literal is in
    the string take part: on a long string Python's `re` tries every alternative at every
    position, ~200 us for 512 characters, most of them for tokens the string does not hold."""
    from crawlerdetect.providers.exclusions import data as exclusions

    parts = []
    for pattern in exclusions:
        literal = _LEADING_LITERAL.match(pattern)
        parts.append((literal.group(0).replace("\\", "").lower() if literal else "", pattern))
    compiled: dict[tuple[int, ...], re.Pattern[str]] = {}

    def remove(text: str) -> str:
        lowered = text.lower()
        present = tuple(i for i, (literal, _) in enumerate(parts) if literal in lowered)
        pattern = compiled.get(present)
        if pattern is None:
            if len(compiled) >= 1024:  # bounded: a new combination costs one compile (~50 us)
                compiled.clear()
            source = "|".join(parts[i][1] for i in present)
            pattern = compiled[present] = re.compile(f"({source})" if source else "(?!)", re.IGNORECASE)
        return pattern.sub("", text)

    return remove


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
    remove_exclusions = _exclusion_remover()

    def is_crawler(ua_string: str) -> bool:
        agent = remove_exclusions(ua_string.strip())
        return bool(agent) and (rust.extract(agent) is not None or python.search(agent) is not None)

    return is_crawler


def _clip(ua_string: str | None) -> str:
    return (ua_string or "").strip()[:UA_MAX_CHARS]


class UserAgentInspector:
    """`parse(ua)` and `bot_class(ua)`, each with its own LRU cache of `cache_size` entries."""

    def __init__(self, cache_size: int) -> None:
        resolver = ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins())
        self._parser = ua_parser.Parser(resolver)  # no inner cache: ours below is the only one
        self._parse = functools.lru_cache(maxsize=cache_size)(self._parse_uncached)
        self._bot_class = functools.lru_cache(maxsize=cache_size)(BotDetector().classify)

    def _parse_uncached(self, ua_string: str) -> ClientAgent:
        result = self._parser.parse(ua_string).with_defaults()
        return ClientAgent(
            browser_family=result.user_agent.family[:FAMILY_MAX_CHARS],
            browser_major=(result.user_agent.major or "")[:16],
            os_family=result.os.family[:FAMILY_MAX_CHARS],
            device_type=device_type(_user_agent(ua_string, result)),
        )

    def parse(self, ua_string: str | None) -> ClientAgent:
        return self._parse(_clip(ua_string))

    def bot_class(
        self,
        ua_string: str | None,
        allow: Sequence[re.Pattern[str]] = (),
        deny: Sequence[tuple[str, re.Pattern[str]]] = (),
    ) -> BotClass | None:
        """The class of a bot, or None for a person. `allow` and `deny` are the operator's
        patterns (`re.search` on the clipped string): a string with no User-Agent is a bot
        whatever they say; else allow wins over deny, and deny (`(class, pattern)`) over
        the built-in rules. They are checked before the cache, so the cache holds only the
        built-in answer."""
        ua = _clip(ua_string)
        if ua and any(pattern.search(ua) for pattern in allow):
            return None
        for klass, pattern in deny if ua else ():
            if pattern.search(ua):
                return BotClass(klass)
        return self._bot_class(ua)

    def is_bot(self, ua_string: str | None) -> bool:
        return self.bot_class(ua_string) is not None

    def cache_info(self) -> dict[str, object]:
        return {"parse": self._parse.cache_info(), "bot_class": self._bot_class.cache_info()}
