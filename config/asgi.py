"""ASGI entry points: ``application`` (Django's, for deployments that prefer an ASGI
server for the API) and ``stream_application``, the Procfile's ``stream`` process
(``streaming.asgi``: live timelines over Server-Sent Events and WebSocket)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_asgi_application()  # sets Django up: the stream application's imports need it

from streaming.asgi import application as stream_application  # noqa: E402

__all__ = ["application", "stream_application"]
