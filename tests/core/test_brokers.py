"""core.brokers: the one rule for what a Celery broker URL names, used by the settings,
the readiness probe and the stack runner."""
import pytest

from core.brokers import broker_address, is_amqp, is_redis


@pytest.mark.parametrize(("url", "amqp", "address"), [
    ("amqp://guest:guest@rabbit:5673//", True, ("rabbit", 5673)),
    ("amqps://rabbit//", True, ("rabbit", 5671)),
    ("pyamqp://rabbit", True, ("rabbit", 5672)),
    ("amqp://a//;amqp://b//", True, ("a", 5672)),  # a failover list: its first broker
    ("redis://cache:6380/0", False, ("cache", 6380)),
    ("rediss://cache/0", False, ("cache", 6379)),
    ("redis://", False, ("127.0.0.1", 6379)),
])
def test_a_broker_url_names_its_kind_and_address(url, amqp, address):
    assert is_amqp(url) is amqp
    assert is_redis(url) is not amqp
    assert broker_address(url) == address
