"""Tests for tweets.text: pure functions, no database.

Cases marked "conformance" are taken from twitter-text's conformance/extract.yml;
the rest pin down the edge cases this project cares about.
"""
import pytest

from tweets import text
from tweets.text import extract_hashtags, extract_mentions, is_valid_length, weighted_length

# --- mentions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # conformance
        ("@username reply", ["username"]),
        ("mention @username", ["username"]),
        ("mention @user_name", ["user_name"]),
        ("mention @12345", ["12345"]),
        ("mention @username1 @username2", ["username1", "username2"]),
        ("の@usernameに到着を待っている", ["username"]),
        ("Current Status: @_@ (cc: @username)", ["username"]),
        ("@aliceìnheiro something something", []),
        ("@username email me @test@example.com", ["username"]),
        ("@http://twitter.com", []),
        ("@username\n@mention", ["username", "mention"]),
        ("RT@username RT:@mention RT @test", ["username", "mention", "test"]),
        ("rt@username rt:@mention rt @test", ["username", "mention", "test"]),
        ("Rt@username Rt:@mention Rt @test", ["username", "mention", "test"]),
        ("rT@username rT:@mention rT @test", ["username", "mention", "test"]),
        ("f!@kn", []),
        ("f@@kn", []),
        ("f#@kn", []),
        ("f$@kn", []),
        ("f%@kn", []),
        ("f&@kn", []),
        ("f*@kn", []),
        # list references are not mentions (twitter-text's extractMentions)
        ("@username/list-name is a great list!", []),
        ("Hey @username, check out out @otheruser/list_name-01!", ["username"]),
        ("@username/7list-name is a great list!", ["username"]),
        # e-mail addresses
        ("mail foo@bar.com now", []),
        ("foo@bar.com and @bob", ["bob"]),
        ("first.last+tag@example.co.uk", []),
        # mentions inside URLs
        ("https://example.com/@bob", []),
        ("see https://example.com/@bob and @carol", ["carol"]),
        ("https://x.com/search?q=@bob&lang=en", []),
        ("https://medium.com/@bob/some-post", []),
        # "@domain.tld" is a mention, not a URL (conformance for URLs)
        ("@test.com", ["test"]),
        # full-width at sign
        ("＠bob hi", ["bob"]),
        ("hi ＠bob and @carol", ["bob", "carol"]),
        ("＠＠bob", []),
        ("@bob＠carol", []),
        # doubled at sign, retweet prefix
        ("@@bob", []),
        ("RT @bob: great point", ["bob"]),
        ("art@bob", []),
        # trailing punctuation ends the username
        ("@bob, hi", ["bob"]),
        ("(@bob) @carol's @dave. @erin!", ["bob", "carol", "dave", "erin"]),
        ("@bob:", ["bob"]),
        # preceding punctuation
        (".@bob", ["bob"]),
        ("x@bob", []),
        ("_@bob", []),
        # length: 15 is the maximum, a longer run is no mention at all
        ("@" + "a" * 15, ["a" * 15]),
        ("@" + "a" * 16, []),
        ("@" + "a" * 21, []),
        ("@" + "a" * 16 + " @bob", ["bob"]),
        # de-duplication, first spelling wins
        ("@Bob @bob @BOB", ["Bob"]),
        ("@carol @Bob @CAROL @bob", ["carol", "Bob"]),
        # nothing to find
        ("", []),
        ("no mentions here", []),
        ("@", []),
        ("@ bob", []),
    ],
)
def test_extract_mentions(content, expected):
    assert extract_mentions(content) == expected


# --- hashtags ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # conformance
        ("a #hashtag here", ["hashtag"]),
        ("this is #hashtag1", ["hashtag1"]),
        ("#1hashtag is this", ["1hashtag"]),
        ("On the #16 bus", []),
        ("#0", []),
        (
            "(#hashtag1 )#hashtag2 [#hashtag3 ]#hashtag4 ’#hashtag5’#hashtag6",
            ["hashtag1", "hashtag2", "hashtag3", "hashtag4", "hashtag5", "hashtag6"],
        ),
        ("I'll write more tests #mañana", ["mañana"]),
        ("Working remotely #café", ["café"]),
        ("this is not valid: # 会議中 ハッシュ", []),
        ("What is #트위터 anyway?", ["트위터"]),
        ("What is #ашок anyway?", ["ашок"]),
        ("日本語ハッシュテスト。#日本語ハッシュタグ", ["日本語ハッシュタグ"]),
        ("#日本語ハッシュタグ。", ["日本語ハッシュタグ"]),
        ("全角英数字ハッシュタグ ＃ｈａｓｈｔａｇ１２３", ["ｈａｓｈｔａｇ１２３"]),
        ("日本語ハッシュタグ#日本語ハッシュタグ", []),
        ("できましたよー！＃日本語ハッシュタグ。", ["日本語ハッシュタグ"]),
        ("#云々 #学問のすゝめ #いすゞ #各〻 #各〃", ["云々", "学問のすゝめ", "いすゞ", "各〻", "各〃"]),
        ("#メ～テレ ハッシュタグ内で～が認識されず", ["メ～テレ"]),
        ("#hashtag: #hashtag; #hashtag, #hashtag. #hashtag! #hashtag?", ["hashtag"]),
        (":#hashtag ;#hashtag ,#hashtag .#hashtag !#hashtag ?#hashtag", ["hashtag"]),
        ("#hashtag\ntest\n#hashtag2\ntest\n#hashtag3\n", ["hashtag", "hashtag2", "hashtag3"]),
        ("#http://twitter.com #https://twitter.com", []),
        ("http://twitter.com/#hashtag twitter.com/#hashtag", []),
        ("#עַל־יְדֵי #וכו׳ #מ״כ", ["עַל־יְדֵי", "וכו׳", "מ״כ"]),
        ("#أيبيإم #می\u200cخواهم", ["أيبيإم", "می\u200cخواهم"]),  # with ZWNJ
        ("#ශ්‍රීලංකා", ["ශ්‍රීලංකා"]),  # with ZWJ
        ("#महात्मा #महात्मा_१२३४ #१२३४ गांधी", ["महात्मा", "महात्मा_१२३४"]),
        ("#Μαχάτμα_Γκάντι ήταν Ινδός πολιτικός", ["Μαχάτμα_Γκάντι"]),
        ("#il·lusió", ["il·lusió"]),
        ("#_ #1_2 #122 #〃", []),
        ("#\U00020021", ["\U00020021"]),
        ("#123 a #hashtag in a string", ["hashtag"]),
        # Unicode tags
        ("#日本語 #café #Ελλάδα", ["日本語", "café", "Ελλάδα"]),
        # digits need a letter somewhere
        ("#123", []),
        ("#a123", ["a123"]),
        ("#123a", ["123a"]),
        # HTML entities and glued text
        ("it&#39;s", []),
        ("&#x27;quoted&#x27;", []),
        ("foo#bar", []),
        ("#foo#bar", []),
        ("#foo＃bar", []),
        # CJK: glued to a letter is no hashtag, after punctuation or space it is
        ("日本語#タグ", []),
        ("日本語 #タグ", ["タグ"]),
        # keycap emoji and emoji presentation selectors
        ("#️⃣", []),
        ("#⃣", []),
        ("press #️⃣ now #ok", ["ok"]),
        ("❤️#love", ["love"]),
        # tags inside URLs
        ("https://example.com/#anchor", []),
        ("example.com/page#frag", []),
        ("https://example.com/page#frag and #real", ["real"]),
        ("https://x.com/search?q=%23a&t=#tag", []),
        # full-width hash sign
        ("＃tag", ["tag"]),
        ("＃️⃣", []),
        # trailing punctuation, de-duplication across case, first spelling wins
        ("#tag.", ["tag"]),
        ("#Tag. #tag, #TAG!", ["Tag"]),
        ("#Python #django #python", ["Python", "django"]),
        ("#Straße #STRASSE", ["Straße"]),
        ("#cafe\u0301 #café", ["cafe\u0301"]),  # decomposed and precomposed are one tag
        # underscore is a tag character, not a terminator
        ("#foo_bar_ #_foo", ["foo_bar_", "_foo"]),
        # a hash sign before the tag is punctuation, as in twitter-text
        ("##tag", ["tag"]),
        # nothing to find
        ("", []),
        ("#", []),
        ("# tag", []),
    ],
)
def test_extract_hashtags(content, expected):
    assert extract_hashtags(content) == expected


def test_mentions_and_hashtags_from_same_text():
    content = "RT @Alice: loving #Django at https://example.com/#docs cc @bob@evil.com @carol"
    assert extract_mentions(content) == ["Alice", "carol"]
    assert extract_hashtags(content) == ["Django"]


# --- length -----------------------------------------------------------------

URL = "https://example.com/a/rather/long/path?with=query&and=more#fragment"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", 0),
        ("This is a test.", 15),
        ("café", 4),
        ("の", 2),
        ("日本語", 6),
        ("저찀쯿쿿", 8),
        ("😷", 2),
        ("👨‍👩‍👧", 2),  # ZWJ sequence counts as one emoji
        ("🇯🇵", 2),  # flag: two regional indicators, one emoji
        ("❤️", 2),
        ("H😷☺", 5),
        (URL, 23),
        ("example.com", 23),
        ("Test https://test.com test https://test.com test.com test", 86),
        ("a\r\nb", 3),  # CRLF counts as one newline
    ],
)
def test_weighted_length(content, expected):
    assert weighted_length(content) == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a" * 280, True),
        ("a" * 281, False),
        ("の" * 140, True),
        ("の" * 141, False),
        ("😷" * 140, True),
        ("😷" * 141, False),
        ("a" * 278 + "の", True),
        ("a" * 279 + "の", False),
        (URL + " " + "a" * 256, True),  # 23 + 1 + 256 = 280
        (URL + " " + "a" * 257, False),
        ("I am a Tweet", True),
        ("", False),
        ("hi\ufeff", False),  # invalid character
        ("hi\uffff", False),
    ],
)
def test_is_valid_length(content, expected):
    assert is_valid_length(content) is expected


def test_boundary_weights():
    assert weighted_length("a" * 280) == 280
    assert weighted_length("a" * 281) == 281
    assert weighted_length("の" * 140) == 280
    assert weighted_length("の" * 141) == 282


@pytest.mark.parametrize("content", ["a." * 16, "x " + "1." * 40, "https://" + "a." * 500, "é." * 150, "a" * 1001])
def test_text_that_would_make_the_url_pattern_backtrack_is_refused_up_front(content):
    assert not text.is_parseable(content)


@pytest.mark.parametrize("content", ["see e.g. https://docs.example.co.uk/a/b.c.d?x=1 and v1.2.3.4",
                                     "https://example.com/" + "p/" * 400, "a" * 1000])
def test_ordinary_text_with_dots_is_parseable(content):
    assert text.is_parseable(content)
