"""The type checker's configuration (mypy.ini, run by `make test`) is strict enough to
catch a value that may be None passed where a tweet is expected, in annotated
functions and unannotated ones alike."""
import textwrap
from pathlib import Path

from mypy import api

REPO = Path(__file__).resolve().parents[2]

SNIPPET = textwrap.dedent('''\
    def find(tweet_id: int) -> dict | None:
        return None


    def show(tweet: dict) -> str:
        return str(tweet["tweet_id"])


    def annotated() -> str:
        return show(find(1))


    def unannotated(tweet_id):
        return show(find(tweet_id))
    ''')


def test_mypy_refuses_a_tweet_that_may_be_none(tmp_path):
    module = tmp_path / "replay.py"
    module.write_text(SNIPPET)
    out, err, code = api.run(["--config-file", str(REPO / "mypy.ini"), "--cache-dir", str(tmp_path / "cache"),
                              str(module)])
    assert code == 1, out + err
    lines = [line.split(":")[1] for line in out.splitlines() if ": error:" in line]
    assert lines == ["10", "14"], out
    assert out.count('incompatible type "dict[Any, Any] | None"; expected "dict[Any, Any]"  [arg-type]') == 2, out
