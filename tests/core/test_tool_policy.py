"""A test that needs a tool the machine lacks skips, except under CI=true, where it fails
(tests.helpers.tool_missing)."""
import pytest

from tests.helpers import tool_missing


@pytest.mark.parametrize("ci", ["", "false", "0"])
def test_a_missing_tool_skips_the_test_outside_ci(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="no RabbitMQ"):
        tool_missing("no RabbitMQ")


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_a_missing_tool_fails_the_test_under_ci(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="no RabbitMQ .*CI=true"):
        tool_missing("no RabbitMQ")

