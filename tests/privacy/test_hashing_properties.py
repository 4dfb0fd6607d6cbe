"""Properties (hypothesis) of the privacy hash: userHash is deterministic, fixed-length hex,
changes with any one input and reveals none of them; the daily salt is one value per UTC day
and per secret. No database, no mocks."""

from __future__ import annotations

import datetime as dt
import re
import string

from hypothesis import given
from hypothesis import strategies as st

from app.privacy.hashing import daily_salt, normalised_user_agent, user_hash, utc_day
from testkit.strategies import NO_SURROGATES, props

text_values = st.text(NO_SURROGATES, max_size=40)
salt_secrets = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=64
).map(
    lambda s: s.encode("utf-8")
)  # text secrets (as read from settings/files); HMAC zero-pads keys, so b"k" == b"k\0" as keys
salts = st.binary(min_size=32, max_size=32)
HEX = set("0123456789abcdef")


@props(300)
@given(salts, text_values, text_values, text_values)
def test_user_hash_is_deterministic_fixed_length_hex(salt: bytes, host: str, ip: str, ua: str) -> None:
    digest = user_hash(salt, host, ip, ua)
    assert digest == user_hash(salt, host, ip, ua)
    assert len(digest) == 64 and set(digest) <= HEX
    for raw in (host, ip, ua):  # hex alone cannot spell an address, a host name or a UA
        if len(raw) >= 8 or not set(raw) <= HEX:
            assert raw not in digest


@props(300)
@given(salts, text_values, text_values, text_values, st.sampled_from(["salt", "host", "ip", "ua"]), st.data())
def test_user_hash_changes_when_any_one_input_changes(
    salt: bytes, host: str, ip: str, ua: str, which: str, data: st.DataObject
) -> None:
    inputs = {"salt": salt, "host": host, "ip": ip, "normalised_ua": ua}
    name = "normalised_ua" if which == "ua" else which
    other = data.draw(salts if which == "salt" else text_values, label=which)
    if other == inputs[name]:
        return
    changed = {**inputs, name: other}
    assert user_hash(**inputs) != user_hash(**changed)


ip_strings = st.ip_addresses().map(str)


@props(200)
@given(salts, st.text(string.ascii_lowercase + ".-", min_size=3, max_size=30), ip_strings, ip_strings)
def test_user_hash_hides_realistic_inputs(salt: bytes, host: str, ip: str, other_ip: str) -> None:
    normalised = normalised_user_agent("Chrome", "120", "Windows")
    digest = user_hash(salt, host, ip, normalised)
    assert ip not in digest and host not in digest and normalised not in digest
    if ip != other_ip:
        assert digest != user_hash(salt, host, other_ip, normalised)


day_moments = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1))
zones = st.one_of(
    st.timezones(),
    st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: dt.timezone(dt.timedelta(minutes=m))),
)


@props(200)
@given(salt_secrets, st.dates(dt.date(1971, 1, 2), dt.date(2199, 12, 30)), st.integers(0, 86_399_999_999),
       st.integers(0, 86_399_999_999), zones, zones)  # fmt: skip
def test_daily_salt_is_one_value_per_utc_day(
    secret: bytes, day: dt.date, micros_a: int, micros_b: int, zone_a: dt.tzinfo, zone_b: dt.tzinfo
) -> None:
    midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
    a = (midnight + dt.timedelta(microseconds=micros_a)).astimezone(zone_a)
    b = (midnight + dt.timedelta(microseconds=micros_b)).astimezone(zone_b)
    assert utc_day(a) == utc_day(b) == day.isoformat()
    assert daily_salt(secret, a) == daily_salt(secret, b)
    assert len(daily_salt(secret, a)) == 32
    next_day = midnight + dt.timedelta(days=1)
    assert daily_salt(secret, a) != daily_salt(secret, next_day.astimezone(zone_b))
    assert daily_salt(secret, a) != daily_salt(secret, (midnight - dt.timedelta(microseconds=1)).astimezone(zone_a))


@props(200)
@given(salt_secrets, salt_secrets, day_moments, day_moments)
def test_daily_salt_differs_across_days_and_secrets(
    secret: bytes, other_secret: bytes, moment: dt.datetime, other: dt.datetime
) -> None:
    assert daily_salt(secret, moment) == daily_salt(secret, moment.replace(tzinfo=dt.UTC))  # naive is UTC
    if utc_day(moment) != utc_day(other):
        assert daily_salt(secret, moment) != daily_salt(secret, other)
    if secret != other_secret:
        assert daily_salt(secret, moment) != daily_salt(other_secret, moment)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", utc_day(moment))
