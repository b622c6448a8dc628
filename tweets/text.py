"""Tweet text rules: length counting, validity and entity extraction.

Everything here is a pure function of the tweet's text, so it needs neither
Django nor a database. Length and validity are delegated to the
``twitter-text-parser`` port of Twitter's v3 counting rules, and URL detection
reuses its extractor; mentions and hashtags mirror the regular expressions of
twitter-text's reference implementation (``validMentionOrList`` and
``validHashtag`` with their ``endMentionMatch``/``endHashtagMatch`` checks),
because that library's Python port ships no mention or hashtag extraction.
Where this module departs from twitter-text, a comment at that spot says so.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import regex
from twitter_text import extract_urls_with_indices, parse_tweet
from twitter_text.config import config as _twitter_text_config
from twitter_text.extract_urls import max_tco_slug_length as _MAX_TCO_SLUG_LENGTH
from twitter_text.extract_urls import max_url_length as _MAX_URL_LENGTH
from twitter_text.regexp.emoji import emoji as _emoji
from twitter_text.regexp.extract_url import extract_url as _extract_url
from twitter_text.regexp.invalid_url_without_protocol_preceding_chars import (
    invalid_url_without_protocol_preceding_chars as _url_invalid_before,
)
from twitter_text.regexp.latin_accent_chars import latin_accent_chars
from twitter_text.regexp.valid_ascii_domain import valid_ascii_domain as _valid_ascii_domain
from twitter_text.regexp.valid_tco_url import valid_tco_url as _valid_tco_url

__all__ = [
    "MAX_USERNAME_LENGTH",
    "MAX_WEIGHTED_LENGTH",
    "URL_WEIGHT",
    "Entity",
    "counting_rules",
    "entities_with_indices",
    "extract_hashtags",
    "extract_mentions",
    "is_parseable",
    "is_valid_length",
    "weighted_length",
]

# social.User.username and Tweet.mentions are both CharField(max_length=15).
MAX_USERNAME_LENGTH = 15

# The counting rules ``parse_tweet`` applies (twitter-text's defaults, v3): the most a
# tweet may weigh, and what a URL weighs whatever its length.
_COUNTING = _twitter_text_config["defaults"]
MAX_WEIGHTED_LENGTH: int = _COUNTING["max_weighted_tweet_length"]
URL_WEIGHT: int = _COUNTING["transformed_url_length"]

_AT_SIGNS = "@\uFF20"  # @ and full-width ＠
_HASH_SIGNS = "#\uFF03"  # # and full-width ＃

# twitter-text consumes the preceding character (or an "RT"/"RT:" prefix) as part
# of the match instead of using a look-behind; keeping that shape, and scanning
# with finditer, reproduces its non-overlapping scan (e.g. nothing in "@@bob").
_MENTION = re.compile(
    r"(?P<before>^|[^a-zA-Z0-9_!#$%&*" + _AT_SIGNS + r"]"
    r"|(?:^|[^a-zA-Z0-9_+~.-])(?:rt|RT|rT|Rt):?)"
    r"[" + _AT_SIGNS + r"]"
    # twitter-text allows {1,20} and so would report the first 20 characters of
    # a longer run. Usernames here are at most 15 characters, and a truncated
    # prefix would notify some other account, so a longer run is no mention.
    r"(?P<name>[a-zA-Z0-9_]{1," + str(MAX_USERNAME_LENGTH) + r"})(?![a-zA-Z0-9_])"
    r"(?P<list>/[a-zA-Z][a-zA-Z0-9_\-]{0,24})?"
)
# Checked on the text after a match, outside the regex, as twitter-text does, so
# that a rejected candidate is not retried as a shorter one.
_END_MENTION = re.compile(r"[" + _AT_SIGNS + latin_accent_chars.pattern + r"]|://")

# Characters twitter-text accepts inside a hashtag besides letters, marks and
# decimal digits (hashtagSpecialChars): ZWNJ/ZWJ, Hebrew maqaf and geresh marks,
# Japanese wave dashes, iteration and sound marks, Tibetan tsheg, middle dot.
_HASHTAG_SPECIAL = (
    r"_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c"
    r"\u30a0\u30fb\u3003\u0f0b\u0f0c\xb7"
)
_HASHTAG_ALPHA = r"[\p{L}\p{M}]"
_HASHTAG_ALNUM = r"[\p{L}\p{M}\p{Nd}" + _HASHTAG_SPECIAL + r"]"
_HASHTAG = regex.compile(
    # hashtagBoundary. U+FE0E/U+FE0F are marks (so they would count as hashtag
    # characters) but an emoji's variation selector must not glue a tag to it.
    r"(?P<before>^|\uFE0E|\uFE0F|(?!" + _HASHTAG_ALNUM + r"|&).)"
    r"[" + _HASH_SIGNS + r"]"
    # Keycap "#️⃣" is the hash sign plus U+FE0F/U+20E3, which are marks too.
    r"(?!\uFE0F|\u20E3)"
    r"(?P<tag>" + _HASHTAG_ALNUM + r"*" + _HASHTAG_ALPHA + _HASHTAG_ALNUM + r"*)",
    regex.DOTALL,
)
_END_HASHTAG = re.compile(r"[" + _HASH_SIGNS + r"]|://")


# twitter-text's URL pattern backtracks badly over runs of dot-separated
# labels ("a.a.a.…": 300 characters cost a quarter of a second, 1,000 cost
# three). No real host name has 16 labels in a row, so such text is refused
# before the library's patterns see it, and so is raw text over 1,000
# characters (a tweet weighs at most MAX_WEIGHTED_LENGTH, 280; only long URLs make it longer): the
# worst accepted input then costs about a tenth of a second.
MAX_RAW_LENGTH = 1_000
_LABEL_RUN = re.compile(r"(?:[^\s.]{1,63}\.){16}")


def is_parseable(content: str) -> bool:
    """False for text too long or too pathological to hand to twitter-text's patterns."""
    return len(content) <= MAX_RAW_LENGTH and _LABEL_RUN.search(content) is None


def weighted_length(content: str) -> int:
    """Twitter's v3 weighted length: URLs count 23, CJK and emoji 2, most else 1."""
    return parse_tweet(content).weightedLength


def counting_rules() -> dict:
    """The counting rules as a browser needs them to count as ``weighted_length`` does (the
    web client's compose counter): the weights, and the very regular expressions the
    counting uses — the URL finder's (twitter-text's, written in JavaScript's syntax to begin
    with) and the emoji list's (its ``\\UXXXXXXXX`` escapes spelled as JavaScript's ``\\u{…}``,
    for a ``u`` expression)."""
    return {
        "max": MAX_WEIGHTED_LENGTH,
        "scale": _COUNTING["scale"],
        "default_weight": _COUNTING["default_weight"],
        "ranges": [[r["start"], r["end"], r["weight"]] for r in _COUNTING["ranges"]],
        "url_weight": URL_WEIGHT,
        "url": _extract_url.pattern,
        "url_invalid_before": _url_invalid_before.pattern,
        "ascii_domain": _valid_ascii_domain.pattern,
        "url_max_length": _MAX_URL_LENGTH,
        "tco": _valid_tco_url.pattern,
        "tco_slug_max_length": _MAX_TCO_SLUG_LENGTH,
        "emoji": re.sub(r"\\U([0-9a-fA-F]{8})", lambda m: f"\\u{{{int(m.group(1), 16):x}}}", _emoji.pattern),
    }


def is_valid_length(content: str) -> bool:
    """True when ``content`` is non-empty, weighs at most ``MAX_WEIGHTED_LENGTH`` and has no invalid characters.

    Whitespace is not stripped first: that is the caller's policy, not a counting rule.
    """
    return parse_tweet(content).valid


def extract_mentions(content: str) -> list[str]:
    """Usernames mentioned with ``@`` (or ``＠``), without the sign.

    Follows twitter-text's extraction: nothing inside e-mail addresses or URLs,
    nothing followed by another at sign, an accented Latin letter or ``://``,
    and ``@user/list`` references are not mentions. Usernames longer than 15
    characters are not mentions at all. Duplicates are dropped
    case-insensitively; the first spelling seen is returned.
    """
    if not any(sign in content for sign in _AT_SIGNS):
        return []
    return _unique((entity.value for entity in _mentions(content, _url_spans(content))), key=str.lower)


def extract_hashtags(content: str) -> list[str]:
    """Hashtags (``#`` or ``＃``) without the sign, following twitter-text's rules.

    A tag holds letters, marks, decimal digits, ``_`` and a few script-specific
    joiners, and needs at least one letter or mark (so ``#123`` is none). It
    must not touch a preceding letter, digit, ``_`` or ``&`` (``&#39;``,
    ``foo#bar``), be followed by another hash sign or ``://``, or lie inside a
    URL. Duplicates are dropped case-insensitively; the first spelling seen is
    returned unchanged.
    """
    if not any(sign in content for sign in _HASH_SIGNS):
        return []
    return _unique((entity.value for entity in _hashtags(content, _url_spans(content))), key=_hashtag_key)


@dataclass(frozen=True, slots=True)
class Entity:
    """A mention, hashtag or URL where it stands in a text: ``start``/``end`` are code point
    offsets of the whole of it (sign included), ``value`` the name or tag without its sign,
    or the URL as written."""

    kind: Literal["mention", "hashtag", "url"]
    value: str
    start: int
    end: int


def entities_with_indices(content: str) -> list[Entity]:
    """Every mention, hashtag and URL of ``content`` in text order, each occurrence with its
    offsets (twitter-text's ``extractEntitiesWithIndices``): the same mentions and hashtags
    ``extract_mentions`` and ``extract_hashtags`` find, repeats included."""
    urls = [Entity("url", url["url"], *url["indices"]) for url in extract_urls_with_indices(content)]
    spans = [(url.start, url.end) for url in urls]
    found = urls
    if any(sign in content for sign in _AT_SIGNS):
        found += _mentions(content, spans)
    if any(sign in content for sign in _HASH_SIGNS):
        found += _hashtags(content, spans)
    return sorted(found, key=lambda entity: entity.start)


def _mentions(content: str, url_spans: list[tuple[int, int]]) -> list[Entity]:
    return _matches(content, kind="mention", pattern=_MENTION, end=_END_MENTION, group="name",
                    url_spans=url_spans, keep=lambda match: not match.group("list"))


def _hashtags(content: str, url_spans: list[tuple[int, int]]) -> list[Entity]:
    return _matches(content, kind="hashtag", pattern=_HASHTAG, end=_END_HASHTAG, group="tag", url_spans=url_spans)


def _matches(content: str, *, kind, pattern, end, group: str, url_spans: list[tuple[int, int]],
             keep=lambda match: True) -> list[Entity]:
    """Every match of ``pattern`` that no ``end`` follows, that ``keep`` accepts and that lies
    outside every URL, in order (twitter-text's scan), from its sign to the end of ``group``."""
    found: list[Entity] = []
    for match in pattern.finditer(content):
        if end.match(content, match.end()) or not keep(match):
            continue
        start, stop = match.end("before"), match.end(group)
        if _overlaps(start, stop, url_spans):
            continue
        found.append(Entity(kind, match.group(group), start, stop))
    return found


def _url_spans(content: str) -> list[tuple[int, int]]:
    # The extractor's indices are code point offsets into the text as given
    # (it does not normalise), which is what the regex match offsets are too.
    return [tuple(url["indices"]) for url in extract_urls_with_indices(content)]


def _overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start < span_end and span_start < end for span_start, span_end in spans)


def _hashtag_key(tag: str) -> str:
    # NFC first so that a precomposed "é" and "e" + combining accent are one tag.
    return unicodedata.normalize("NFC", tag).casefold()


def _unique(items: Iterable[str], *, key) -> list[str]:
    seen: set[str] = set()
    result: list[str] = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            result.append(item)
    return result
