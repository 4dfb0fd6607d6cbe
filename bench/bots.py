"""Bot detectors side by side on the public corpus (bench/corpus/user-agents.tsv.gz, built by
bench/corpus/build.py): false drops on people, misses on bots, and cost per unique UA.

    .venv/bin/python bench/bots.py                 # about 3 minutes on 2 cores
    .venv/bin/python bench/bots.py --rounds 5      # steadier timings
    .venv/bin/python bench/bots.py --matomo-sample 0   # skip the (slow) Matomo port itself

Detectors:
- today: what ingest used before this filter: ua-parser's `Spider` device or crawlerdetect's
  patterns on a Rust set, after crawlerdetect's exclusions as one Python alternation (the
  code as it was, rebuilt here: `today_crawler_matcher`).
- crawlerdetect: the library itself (`CrawlerDetect().is_crawler`, pure Python).
- crawler-user-agents: that package's own `is_crawler` (its patterns, case-sensitive).
- matomo: the Python port of Matomo Device Detector (`DeviceDetector(ua).parse().is_bot()`),
  and matomo+lib (also its `library` clients). It takes ~10 ms per string, so it runs on a
  deterministic sample of the corpus (`--matomo-sample`, 1 in N).
- lists: the union of the three lists' patterns (crawler-user-agents, Matomo's bot, feed
  reader and library regexes, crawlerdetect), on Rust regex sets, without our own rules.
- lists+own: the same with our own rules (automation, AI agents, monitors, libraries).
- chosen: `app.ingest.useragents.BotDetector`, which is lists+own after removing the tokens
  of people's clients (Office, Outlook, Slack, CFNetwork apps, MozacFetch, device models ...).

Rates: false drops = people classified as bots / people; misses = bots classified as people /
bots; overall, on the held-out split (rules were tuned on `dev` only), and per source for
the chosen detector and today's. Each source's own list is best on its own strings: the
per-source rows show how each list does on the others' strings.

Cost: per unique UA, in microseconds, the marginal cost of the bot decision (ua-parser's
parse, which ingest needs anyway, is measured apart). Each detector times every string in
each of `--rounds` rounds, detectors taking turns within a round in a rotating order; a
string's cost is its minimum over the rounds; median, p99 and worst case over the corpus,
and the worst case over a few adversarial strings of the maximum length, are reported with
their ratio to today's measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import string
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ua_parser

from app.ingest.useragents import (
    UA_MAX_CHARS,
    BotDetector,
    RuleSet,
    crawler_matcher,
    crawler_user_agents_rules,
    matomo_rules,
    own_rules,
)
from bench.corpus.build import read_corpus

Detector = Callable[[str], bool]


@dataclass
class Result:
    name: str
    fast: bool  # timed on the whole corpus (else on the sample it was scored on)
    sample: list[dict[str, str]]
    verdicts: dict[str, bool] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)  # per UA: the minimum over rounds, us


def clip(ua: str) -> str:
    return ua.strip()[:UA_MAX_CHARS]


def today_crawler_matcher() -> Detector:
    """The crawler matcher ingest had before this filter, as it was."""
    import re

    import ua_parser_rs
    from crawlerdetect.crawlerdetect import get_compiled_exclusions_regex
    from crawlerdetect.providers.crawlers import data as patterns

    lookaround = re.compile(r"\(\?<?[!=]")
    rust = ua_parser_rs.DeviceExtractor([(p, "i", "crawler", None, None) for p in patterns if not lookaround.search(p)])
    python = re.compile("|".join(p for p in patterns if lookaround.search(p)) or "(?!)", re.IGNORECASE)
    exclusions = get_compiled_exclusions_regex()

    def is_crawler(ua: str) -> bool:
        agent = exclusions.sub("", ua.strip())
        return bool(agent) and (rust.extract(agent) is not None or python.search(agent) is not None)

    return is_crawler


def detectors(corpus_uas: list[str]) -> dict[str, Detector]:
    from crawlerdetect import CrawlerDetect
    from crawleruseragents import is_crawler as cua_is_crawler

    resolver = ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins())
    parser = ua_parser.Parser(resolver)
    fast_crawlerdetect = crawler_matcher()
    old_crawlerdetect = today_crawler_matcher()
    reference = CrawlerDetect()
    lists = RuleSet(crawler_user_agents_rules() + matomo_rules())
    lists_own = RuleSet(own_rules() + crawler_user_agents_rules() + matomo_rules())
    chosen = BotDetector()
    spider_of: dict[str, bool] = {}  # today's Spider flag came from the parse ingest does anyway

    def today(ua: str) -> bool:
        spider = spider_of.get(ua)
        if spider is None:
            spider = spider_of[ua] = parser.parse(ua).with_defaults().device.family == "Spider"
        return not ua or spider or old_crawlerdetect(ua)

    for ua in corpus_uas:
        spider_of[ua] = parser.parse(ua).with_defaults().device.family == "Spider"

    return {
        "today": today,
        "crawlerdetect": lambda ua: not ua or bool(reference.is_crawler(ua)),
        "crawler-user-agents": lambda ua: not ua or cua_is_crawler(ua),
        "lists": lambda ua: not ua or lists.match(ua) is not None or fast_crawlerdetect(ua),
        "lists+own": lambda ua: not ua or lists_own.match(ua) is not None or fast_crawlerdetect(ua),
        "chosen": lambda ua: chosen.classify(ua) is not None,
    }


def matomo_detectors() -> dict[str, Detector]:
    from device_detector import DeviceDetector

    def matomo(ua: str) -> bool:
        return not ua or DeviceDetector(ua, skip_device_detection=True).parse().is_bot()

    def matomo_lib(ua: str) -> bool:
        if not ua:
            return True
        parsed = DeviceDetector(ua, skip_device_detection=True).parse()
        return parsed.is_bot() or parsed.client_type() == "library"

    return {"matomo": matomo, "matomo+lib": matomo_lib}


def adversarial() -> list[str]:
    rng = random.Random(7)
    printable = string.ascii_letters + string.digits + " ;:/()._-,"
    return [
        "".join(rng.choice(printable) for _ in range(UA_MAX_CHARS)),
        "a" * (UA_MAX_CHARS - 5) + "cubot",
        ("Mozilla/5.0 (compatible; " * 30)[:UA_MAX_CHARS],
        ("Microsoft Office Android 9; CFNetwork/1 Darwin/2 " * 12)[:UA_MAX_CHARS],
        ("Mozilla/5.0 (Linux; Android 14; " + "x" * 480 + ")")[:UA_MAX_CHARS],
        ("-" * 250 + "bot" + "_" * 259)[:UA_MAX_CHARS],
    ]


def time_rounds(named: dict[str, Detector], uas: list[str], rounds: int) -> dict[str, dict[str, float]]:
    costs: dict[str, dict[str, float]] = {name: {} for name in named}
    order = list(named)
    clock = time.perf_counter_ns
    for round_number in range(rounds):
        for name in order[round_number % len(order) :] + order[: round_number % len(order)]:
            detect, best = named[name], costs[name]
            for ua in uas:
                start = clock()
                detect(ua)
                elapsed = (clock() - start) / 1000
                if elapsed < best.get(ua, float("inf")):
                    best[ua] = elapsed
    return costs


def rate(rows: list[dict[str, str]], verdicts: dict[str, bool], label: str) -> tuple[int, int]:
    chosen = [r for r in rows if r["label"] == label]
    wrong = sum(verdicts[r["ua"]] != (label == "bot") for r in chosen)
    return wrong, len(chosen)


def share(pair: tuple[int, int]) -> float:
    return 100 * pair[0] / pair[1] if pair[1] else 0.0


def pct(pair: tuple[int, int]) -> str:
    wrong, n = pair
    return f"{100 * wrong / n:6.2f}% ({wrong}/{n})" if n else "-"


def bucket(ua: str, n: int, salt: str = "matomo") -> int:
    """A deterministic pseudo-random bucket in [0, n) for sampling."""
    return int(hashlib.sha256(f"{salt}:{ua}".encode()).hexdigest()[:8], 16) % n


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--matomo-sample", type=int, default=25, help="score Matomo on 1 in N strings (0: skip)")
    args = parser.parse_args()

    rows = read_corpus()
    for row in rows:
        row["ua"] = clip(row["ua"])
    corpus_uas = sorted({r["ua"] for r in rows})
    counts = Counter((r["label"], r["split"]) for r in rows)
    print(
        f"corpus: {len(rows)} strings; people {counts['person', 'dev']} dev + {counts['person', 'holdout']} holdout,"
        f" bots {counts['bot', 'dev']} dev + {counts['bot', 'holdout']} holdout"
    )

    started = time.perf_counter()
    fast = detectors(corpus_uas)
    slow_sample = [r for r in rows if bucket(r["ua"], 10, salt="crawlerdetect") == 0]
    results = {
        name: Result(name, name != "crawlerdetect", rows if name != "crawlerdetect" else slow_sample) for name in fast
    }
    slow = matomo_detectors() if args.matomo_sample else {}
    matomo_sample = [r for r in rows if args.matomo_sample and bucket(r["ua"], args.matomo_sample) == 0]
    for name in slow:
        results[name] = Result(name, False, matomo_sample)

    warm = corpus_uas[::50] + adversarial()
    for name, detect in {**fast, **slow}.items():  # compile lazily built state before timing
        for ua in warm[:: 10 if name in slow else 1]:
            detect(ua)

    fast_timed = {name: detect for name, detect in fast.items() if results[name].fast}
    corpus_costs = time_rounds(fast_timed, corpus_uas, args.rounds)
    slow_timed = {name: fast[name] for name in fast if not results[name].fast} | slow
    for name, detect in slow_timed.items():
        uas = sorted({r["ua"] for r in results[name].sample})
        corpus_costs[name] = time_rounds({name: detect}, uas, 1)[name]
    attack = adversarial()
    attack_costs = time_rounds({**fast, **slow}, attack, max(args.rounds, 3))
    parse = ua_parser.Parser(ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins()))
    parse_costs = time_rounds({"parse": parse.parse}, corpus_uas[::5], args.rounds)["parse"]

    for name, result in results.items():
        detect = {**fast, **slow}[name]
        for ua in {r["ua"] for r in result.sample}:
            result.verdicts[ua] = detect(ua)
        result.costs = corpus_costs[name]

    base = results["today"].costs
    base_median, base_max = statistics.median(base.values()), max(base.values())
    base_attack = max(attack_costs["today"].values())
    print(
        "\nrates (false drops on people | misses on bots), all strings and the held-out split; cost per unique UA, us"
        " (ratio to today's)"
    )
    header = f"{'detector':20} {'strings':>7}  {'false drops':>19} {'misses':>19}  {'holdout fd':>10} {'miss':>11}"
    header += f"  {'median':>13} {'p99':>7} {'worst':>15} {'adversarial':>15}"
    print(header)
    for name, result in results.items():
        sample = result.sample
        holdout = [r for r in sample if r["split"] == "holdout"]
        holdout_fd, holdout_miss = rate(holdout, result.verdicts, "person"), rate(holdout, result.verdicts, "bot")
        costs = list(result.costs.values())
        median, worst = statistics.median(costs), max(costs)
        attack_worst = max(attack_costs[name].values())
        print(
            f"{name:20} {len(sample):7}  {pct(rate(sample, result.verdicts, 'person')):>19}"
            f" {pct(rate(sample, result.verdicts, 'bot')):>19}"
            f"  {share(holdout_fd):9.2f}% {share(holdout_miss):10.2f}%"
            f"  {median:6.1f} ({median / base_median:4.2f}x) {quantile(costs, 0.99):7.1f}"
            f" {worst:7.0f} ({worst / base_max:4.2f}x) {attack_worst:7.0f} ({attack_worst / base_attack:4.2f}x)"
        )
    print(
        f"\nua-parser parse (done by ingest anyway, not in the costs above): median "
        f"{statistics.median(parse_costs.values()):.1f} us, worst {max(parse_costs.values()):.0f} us"
    )

    print("\nper source (false drops on its people | misses on its bots)")
    sources = sorted({r["source"] for r in rows})
    names = [n for n in ("today", "crawler-user-agents", "lists", "lists+own", "chosen") if n in results]
    print(f"{'source':22}" + "".join(f" {n:>24}" for n in names))
    for source in sources:
        for label in ("person", "bot"):
            cells = []
            for name in names:
                subset = [r for r in results[name].sample if r["source"] == source]
                pair = rate(subset, results[name].verdicts, label)
                cells.append(pct(pair) if pair[1] else "-")
            if any(c != "-" for c in cells):
                print(f"{source + ' ' + label:22}" + "".join(f" {c:>24}" for c in cells))

    chosen = BotDetector()
    labelled = [r for r in rows if r["label"] == "bot" and r["class"]]
    agree = sum((k := chosen.classify(r["ua"])) is not None and k.value == r["class"] for r in labelled)
    print(
        f"\nchosen detector's class agrees with the source's kind of bot for {agree}/{len(labelled)} "
        f"({100 * agree / len(labelled):.1f}%) of the bots whose source names one"
    )
    print(f"(took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
