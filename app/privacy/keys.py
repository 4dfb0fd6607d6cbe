"""Description keys as a person reads them, and which ones look like personal data.

Shared by ingest (which refuses events whose description has such keys) and the read side
(which never shows values under such keys): one rule, so what ingest would refuse and what
the read side hides cannot drift apart.

Keys are compared case- and separator-insensitively, after NFKC and with look-alike letters
such as a Cyrillic i (U+0456) read as the Latin letter they imitate.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from confusable_homoglyphs import confusables

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})  # control, format (bidi, zero-width), ...


# PII-shaped description keys, compared after lower-casing and dropping every non-alphanumeric.
PII_KEYS_EXACT = frozenset(
    {
        "name", "firstname", "lastname", "fullname", "surname", "givenname", "familyname", "middlename",
        "maidenname", "username", "displayname", "nickname", "email", "mail", "emailaddress",
        "phone", "phonenumber", "mobile", "mobilenumber", "tel", "telephone", "fax",
        "userid", "uid", "token", "password", "passwd", "pwd", "secret", "apikey",
        "ip", "ipaddr", "ipaddress", "ipv4", "ipv6", "address", "street", "streetaddress",
        "ssn", "socialsecuritynumber", "dob", "dateofbirth", "birthdate", "birthday", "birthplace",
        "iban", "creditcard", "cardnumber", "passport", "postcode", "zipcode",
    }
)  # fmt: skip
# ... and keys containing any of these (e.g. `customerEmail`, `billing_address`, `X-Auth-Token`).
PII_KEY_PARTS = (
    "email", "phone", "password", "passwd", "secret", "token", "address", "street", "birth",
    "surname", "firstname", "lastname", "fullname", "username", "userid", "customername",
    "contactname", "personname", "realname", "legalname",
)  # fmt: skip
# ... and keys made of words where one of these stands alone (`ip_country`, `client IP`, `user-ssn`).
PII_KEY_WORDS = frozenset({"ip", "ssn", "dob", "mail", "mobile", "tel", "uid"})
# Words: split at separators, at camelCase humps and after an acronym (`clientIPHash`).
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@functools.lru_cache(maxsize=4096)  # keys repeat: "button", "rows", ...
def has_hidden_characters(value: str) -> bool:
    """Control, format (bidi overrides, zero-width), private-use or separator characters."""
    return any(unicodedata.category(char) in HIDDEN_CATEGORIES for char in value)


@functools.lru_cache(maxsize=4096)
def _latin_lookalike(char: str) -> str:
    found = confusables.is_confusable(char, greedy=True, preferred_aliases=["latin"])
    for entry in found or ():
        for glyph in entry.get("homoglyphs", ()):
            if glyph["c"].isascii():
                return str(glyph["c"])
    return char


def skeleton(value: str) -> str:
    """NFKC, then every non-ASCII letter that imitates an ASCII one replaced by it
    (Unicode's confusables data, through `confusable_homoglyphs`)."""
    return "".join(char if char.isascii() else _latin_lookalike(char) for char in unicodedata.normalize("NFKC", value))


def pii_key(key: str) -> bool:
    """True when `key` looks like it names personal data (`email`, `firstName`, `client IP`, ...)."""
    key = skeleton(key)
    flat = re.sub(r"[^a-z0-9]", "", key.lower())
    if flat in PII_KEYS_EXACT or any(part in flat for part in PII_KEY_PARTS):
        return True
    words = [*_WORD_SPLIT.split(key), *re.split(r"[^a-z0-9]+", key.lower())]  # the latter: `client_iP`
    return any(word.lower() in PII_KEY_WORDS for word in words if word)
