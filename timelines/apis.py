"""HTTP endpoint of the home timeline."""
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from config import schema
from config.authentication import CachedUserJWTAuthentication
from config.pagination import TimelineParams

from .selectors import timeline_page_for_user


class HomeTimelineApi(APIView):
    authentication_classes = [CachedUserJWTAuthentication]  # needs only the reader's id

    @extend_schema(parameters=[TimelineParams], responses={200: schema.TimelinePage})
    def get(self, request):
        params = TimelineParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        page = timeline_page_for_user(user_id=request.user.id, limit=params.validated_data["limit"],
                                      cursor=params.validated_data.get("cursor"),
                                      since=params.validated_data.get("since"))
        return Response({"data": page.tweets, "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor})
