import tempfile
from pathlib import Path

import pytest

from chaos.stack import RedisServer


@pytest.fixture
def own_valkey():
    """A Valkey server of the test's own on a spare port (counts and databases nobody else touches):
    its client, on database 0."""
    with tempfile.TemporaryDirectory() as where:
        server = RedisServer("bench-test", Path(where))
        server.start()
        try:
            yield server.client()
        finally:
            server.kill()
