"""Build bench/corpus/user-agents.tsv.gz: public User-Agent strings, each labelled bot or person,
from pinned registry packages (PyPI and npm, fetched with pip and npm), plus a small
hand-labelled list (hand-labelled.tsv) for categories the sources lack or get wrong.

    .venv/bin/python bench/corpus/build.py          # rewrites bench/corpus/user-agents.tsv.gz

(gzip, without a timestamp, so the same inputs give the same bytes: 0.8 MB instead of 10.)

Sources (versions pinned below, so a rebuild gives the same file):
- crawler-user-agents (PyPI): the example `instances` it ships for each pattern -> bot;
  its tags give the expected class.
- device-detector (PyPI, the Python port of Matomo Device Detector): its test fixtures.
  `bots.yml` -> bot (category -> class); every device fixture -> person, except clients
  Matomo itself types `library` (curl, python-requests, okhttp, ...) -> bot, class library,
  and `feed reader` clients -> bot, class crawler (see `OVERRIDES` and `PERSON_LIBRARIES`).
- crawlerdetect (PyPI sdist): its test fixtures `crawlers.txt` -> bot, `devices.txt` ->
  person (a deterministic 1-in-10 sample by hash: the file holds 165,000 lines).
- user-agents (npm): browser User-Agents seen on real sites (its data file) -> person.
- top-user-agents (npm): the most common browser User-Agents -> person.
- hand-labelled.tsv: label, class, why, and the string.

Where sources disagree about one string, `OVERRIDES` below decides (each with its reason);
a disagreement not covered there is left out of the corpus and printed, so a new one
is seen. Every row also gets a split (`dev`, 70%; `holdout`, 30%) by the hash of the string:
rules are tuned on `dev` only, and bench/bots.py reports both.

Columns: label (bot|person), class (expected bot class, where the source says), split,
source, category (the source's own category), ua.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
OUT = HERE / "user-agents.tsv.gz"
HAND = HERE / "hand-labelled.tsv"

PYPI = {"crawler-user-agents": "1.67.0", "device-detector": "6.5.1", "crawlerdetect": "0.4.2"}
NPM = {"user-agents": "2.1.198", "top-user-agents": "2.1.138"}
DEVICES_SAMPLE = 10  # keep 1 in N of crawlerdetect's devices.txt
HOLDOUT_PERCENT = 30

# crawler-user-agents tags -> class (first match in this order wins)
CUA_TAGS = [
    ("ai-crawler", "ai-agent"),
    ("browser-automation", "automation"),
    ("monitoring", "monitor"),
    ("http-library", "library"),
]
# Matomo bot categories -> class (anything else is a crawler)
MATOMO_CATEGORIES = {"Site Monitor": "monitor", "Network Monitor": "monitor", "Benchmark": "monitor"}

# Matomo `library` clients that are a platform's own stack on a person's device, used by the
# apps people run (as CFNetwork and MozacFetch are): people, not programs.
PERSON_LIBRARIES = {
    "Apple Core Media": "Apple's media framework playing audio/video for a person",
    "Safari View Service": "Safari inside an iOS app",
    "KaiOS Downloader": "a feature phone's own download manager",
    "MatomoTracker": "an analytics SDK inside a person's app (as Signals' own tracker is)",
    "BIC Tracker": "an analytics SDK inside a person's app",
    "Android License Verification Library": "Google Play's licence check inside a person's app",
    "Emacs": "Emacs' web browser (eww), a person reading",
}
MATOMO_FEED_READER = "a feed reader polls feeds on a timer: no person looks at a page"

# (regex on the string, label, class, why): decides strings the sources label both ways, and
# strings a source labels against what this product counts (a person behind a real client).
OVERRIDES: list[tuple[re.Pattern[str], str, str, str]] = [
    (
        re.compile(r"\bMozacFetch/"),
        "person",
        "",
        "Firefox for Android's own fetch library (Mozilla Android Components): a person's browser",
    ),
    (
        re.compile(
            r"(?i)^(?!.*(?:bot|crawl|spider|extractor|tester|downloader|scan))"
            r"[^/ ]+/[\d.]+ CFNetwork/[\d.]+ Darwin/"
        ),
        "person",
        "",
        "an iOS/macOS app's own requests through Apple's CFNetwork: a person using that app",
    ),
    (
        re.compile(r"Microsoft Office|ms-office|MSOffice|Microsoft Outlook|^Outlook-(?:iOS|Android)/"),
        "person",
        "",
        "Office and Outlook apps opening a link or rendering mail: a person (crawlerdetect lists them as bots)",
    ),
    (
        re.compile(r"\bSlack/[\d.]+ .*(?:Electron|AtomShell)/"),
        "person",
        "",
        "Slack's desktop app, an Electron shell a person works in (crawlerdetect lists it as a bot)",
    ),
    (
        re.compile(r"^(?:AndroidDownloadManager|PodcastAddict)/|LibVLC/|QQDownload \d"),
        "person",
        "",
        "a phone's download manager, podcast and media players, a toolbar token in Internet Explorer:"
        " a person's device (crawlerdetect lists them as bots)",
    ),
    (
        re.compile(r"^WhatsApp/[\d.]+ (?:Android|iPhone_OS|[AWi])"),
        "bot",
        "crawler",
        "WhatsApp's link-preview fetcher (Matomo types it a messaging app): no person is on the page",
    ),
    (
        re.compile(r"^git/\d"),
        "bot",
        "library",
        "the git command line fetching over HTTP (Matomo types it a mobile app)",
    ),
]


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    klass: str
    source: str
    category: str
    ua: str


def clean(ua: object) -> str | None:
    """The string as a header would carry it, or None when it cannot be one."""
    if not isinstance(ua, str):
        return None
    ua = ua.strip()
    if not ua or any(ch in ua for ch in "\t\r\n\x00"):
        return None
    return ua


def split_of(ua: str) -> str:
    bucket = int(hashlib.sha256(ua.encode()).hexdigest()[:8], 16) % 100
    return "holdout" if bucket < HOLDOUT_PERCENT else "dev"


# --- fetching the pinned packages ---------------------------------------------------------


def pip_download(name: str, version: str, dest: Path, sdist: bool = False) -> Path:
    args = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), f"{name}=={version}"]
    args += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    subprocess.run(args, check=True)
    stem = name.replace("-", "_")
    found = [p for p in dest.iterdir() if p.name.lower().startswith(f"{stem}-{version}")]
    if not found:
        raise SystemExit(f"pip download {name}=={version}: no file in {dest}")
    return found[0]


def npm_pack(name: str, version: str, dest: Path) -> tarfile.TarFile:
    subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", str(dest)],
        check=True,
        capture_output=True,
    )
    return tarfile.open(dest / f"{name}-{version}.tgz")


# --- the sources --------------------------------------------------------------------------


def crawler_user_agents(wheel: Path) -> Iterator[Row]:
    with zipfile.ZipFile(wheel) as zf:
        data = json.loads(zf.read("crawleruseragents/crawler-user-agents.json"))
    for entry in data:
        tags = entry.get("tags") or []
        klass = next((k for tag, k in CUA_TAGS if tag in tags), "crawler")
        for ua in entry.get("instances", []):
            if (ua := clean(ua)) is not None:
                yield Row("bot", klass, "crawler-user-agents", ",".join(tags), ua)


def yaml_load(text: bytes) -> object:
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def matomo(wheel: Path) -> Iterator[Row]:
    prefix = "device_detector/tests/fixtures/upstream/"
    with zipfile.ZipFile(wheel) as zf:
        names = sorted(n for n in zf.namelist() if n.startswith(prefix) and n.endswith(".yml"))
        for name in names:
            fixture = Path(name).stem.split("-")[0]
            for entry in yaml_load(zf.read(name)) or []:  # type: ignore[union-attr]
                ua = clean(entry.get("user_agent"))
                if ua is None:
                    continue
                if fixture == "bots":
                    category = (entry.get("bot") or {}).get("category") or ""
                    klass = "ai-agent" if category.startswith("AI ") else MATOMO_CATEGORIES.get(category, "crawler")
                    yield Row("bot", klass, "matomo", f"bots/{category}", ua)
                    continue
                client = entry.get("client") if isinstance(entry.get("client"), dict) else {}
                kind = client.get("type") or ""
                name = client.get("name", "")
                if kind == "library" and name not in PERSON_LIBRARIES:
                    yield Row("bot", "library", "matomo", f"{fixture}/library/{name}", ua)
                elif kind == "feed reader":
                    yield Row("bot", "crawler", "matomo", f"{fixture}/feed reader/{name}", ua)
                else:
                    yield Row("person", "", "matomo", f"{fixture}/{kind}", ua)


def crawlerdetect(sdist: Path) -> Iterator[Row]:
    with tarfile.open(sdist) as tf:
        for member in tf.getmembers():
            path = member.name.split("/", 1)[-1]
            if path not in ("tests/fixtures/user_agent/crawlers.txt", "tests/fixtures/user_agent/devices.txt"):
                continue
            handle = tf.extractfile(member)
            assert handle is not None
            crawlers = path.endswith("crawlers.txt")
            for line in io.TextIOWrapper(handle, encoding="utf-8", errors="replace"):
                ua = clean(line)
                if ua is None:
                    continue
                if crawlers:
                    yield Row("bot", "", "crawlerdetect", "crawlers.txt", ua)
                elif int(hashlib.sha256(ua.encode()).hexdigest()[8:16], 16) % DEVICES_SAMPLE == 0:
                    yield Row("person", "", "crawlerdetect", "devices.txt", ua)


def npm_user_agents(tf: tarfile.TarFile) -> Iterator[Row]:
    handle = tf.extractfile("package/dist/user-agents.json")
    assert handle is not None
    raw = handle.read()
    data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    for entry in data:
        if (ua := clean(entry.get("userAgent"))) is not None:
            yield Row("person", "", "npm:user-agents", entry.get("deviceCategory") or "", ua)


def npm_top_user_agents(tf: tarfile.TarFile) -> Iterator[Row]:
    handle = tf.extractfile("package/src/index.json")
    assert handle is not None
    for ua in json.loads(handle.read()):
        if (ua := clean(ua)) is not None:
            yield Row("person", "", "npm:top-user-agents", "top", ua)


def hand_labelled() -> Iterator[Row]:
    with HAND.open(encoding="utf-8") as handle:
        for record in csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t"):
            ua = clean(record["ua"])
            assert ua is not None and record["label"] in ("bot", "person"), record
            yield Row(record["label"], record["class"], "hand-labelled", record["category"], ua)


# --- assembling -----------------------------------------------------------------------------


def override(ua: str) -> tuple[str, str] | None:
    """(label, class) when an override decides `ua`."""
    return next(((label, klass) for pattern, label, klass, _ in OVERRIDES if pattern.search(ua)), None)


def assemble(rows: list[Row]) -> tuple[list[Row], list[str]]:
    """One row per string; a string labelled both ways is decided by `OVERRIDES` or, for
    the hand-labelled list, by that list; otherwise it is left out and reported."""
    by_ua: dict[str, list[Row]] = {}
    for row in rows:
        by_ua.setdefault(row.ua, []).append(row)
    kept, conflicts = [], []
    for ua, found in by_ua.items():
        labels = {row.label for row in found}
        forced = override(ua)
        hand = [row for row in found if row.source == "hand-labelled"]
        if hand:
            chosen = hand[0]
        elif forced is not None:
            label, klass = forced
            chosen = Row(label, klass, found[0].source, found[0].category, ua)
        elif len(labels) == 1:
            chosen = found[0]
        else:
            conflicts.append(f"{sorted({r.source + ':' + r.label for r in found})} {ua}")
            continue
        kept.append(chosen)
    kept.sort(key=lambda r: (r.source, r.label, r.category, r.ua))
    return kept, conflicts


def read_corpus(path: Path = OUT) -> list[dict[str, str]]:
    """The corpus rows as dicts (label, class, split, source, category, ua)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp)
        rows = list(crawler_user_agents(pip_download("crawler-user-agents", PYPI["crawler-user-agents"], dest)))
        rows += matomo(pip_download("device-detector", PYPI["device-detector"], dest))
        rows += crawlerdetect(pip_download("crawlerdetect", PYPI["crawlerdetect"], dest, sdist=True))
        rows += npm_user_agents(npm_pack("user-agents", NPM["user-agents"], dest))
        rows += npm_top_user_agents(npm_pack("top-user-agents", NPM["top-user-agents"], dest))
    rows += hand_labelled()
    kept, conflicts = assemble(rows)
    text = io.StringIO(newline="")
    writer = csv.writer(text, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["label", "class", "split", "source", "category", "ua"])
    for row in kept:
        writer.writerow([row.label, row.klass, split_of(row.ua), row.source, row.category, row.ua])
    OUT.write_bytes(gzip.compress(text.getvalue().encode("utf-8"), compresslevel=9, mtime=0))
    counts: dict[tuple[str, str], int] = {}
    for row in kept:
        counts[(row.source, row.label)] = counts.get((row.source, row.label), 0) + 1
    for (source, label), n in sorted(counts.items()):
        print(f"{source:22} {label:7} {n:7}")
    print(f"{len(kept)} strings written to {OUT.relative_to(HERE.parent.parent)}")
    for line in conflicts:
        print("left out, labelled both ways:", line)


if __name__ == "__main__":
    main()
