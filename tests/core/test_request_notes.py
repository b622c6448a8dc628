"""The request's notes carry what its layers hand each other: a view's declared first reads, queued in
the round trip that authenticates the reader, and the throttle's decision."""
import pytest
from django.conf import settings
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView
from rest_framework_simplejwt.tokens import AccessToken

from core.request_notes import FirstReads, ReadsFirst, notes_of
from social.authentication import CachedUserJWTAuthentication

pytestmark = pytest.mark.django_db


class _Greeting(FirstReads):
    """Reads one key, and records the reader it was queued for."""

    queued_for: int | None = None
    reply = None

    def queue(self, round_trip, *, request, user_id: int) -> None:
        self.queued_for = user_id
        key = f"{settings.REDIS_KEY_PREFIX}greeting"
        self.reply = round_trip.add(lambda pipe: pipe.get(key), lambda replies: replies[0])


class _GreetingApi(ReadsFirst, APIView):
    authentication_classes = [CachedUserJWTAuthentication]
    throttle_scope = "timeline"
    first_reads = _Greeting

    def get(self, request):
        reads = notes_of(request).first_reads
        assert isinstance(reads, _Greeting)
        return Response({"for": reads.queued_for, "made": reads.reply.made, "value": reads.reply.value.decode(),
                         "remaining": notes_of(request).decision.remaining})


class _PlainApi(APIView):
    authentication_classes = [CachedUserJWTAuthentication]

    def get(self, request):
        return Response({"first_reads": notes_of(request).first_reads is not None})


def _get(view, user):
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return view.as_view()(request)


def test_a_view_finds_the_first_reads_it_declares_made_with_its_readers_authentication(make_user, redis,
                                                                                        settings):
    settings.RATE_LIMIT_TIMELINE = "5/min"
    redis.set(f"{settings.REDIS_KEY_PREFIX}greeting", "hello")
    reader = make_user()
    r = _get(_GreetingApi, reader)
    assert r.status_code == 200
    assert r.data == {"for": reader.id, "made": True, "value": "hello", "remaining": 4}


def test_a_view_that_declares_no_first_reads_gets_none(make_user):
    r = _get(_PlainApi, make_user())
    assert r.status_code == 200 and r.data == {"first_reads": False}


def test_a_drf_request_and_its_django_request_share_one_set_of_notes():
    http_request = RequestFactory().get("/")
    notes = notes_of(Request(http_request))
    assert notes_of(http_request) is notes and notes_of(Request(http_request)) is notes
