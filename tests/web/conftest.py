from tests.mastoapi.conftest import app_client  # noqa: F401 - a registered app, as the Mastodon tests have it
