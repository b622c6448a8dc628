"""What the Mastodon API keeps beyond the product's own tables: the scopes and website
an app registered with (django-oauth-toolkit's Application has neither), and read
positions (markers)."""
from django.conf import settings
from django.db import models
from oauth2_provider.settings import APPLICATION_MODEL


class AppProfile(models.Model):
    application = models.OneToOneField(APPLICATION_MODEL, on_delete=models.CASCADE,
                                       related_name="mastodon")
    scopes = models.CharField(max_length=500)  # space-separated, as registered
    website = models.CharField(max_length=500, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.application_id}: {self.scopes}"


class Marker(models.Model):
    """A user's read position in one timeline (only ``home`` here); ``version`` counts its
    updates, and an update made against an older version is refused (409)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    timeline = models.CharField(max_length=20)
    last_read_id = models.BigIntegerField()
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "timeline"], name="marker_user_timeline_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.timeline}: {self.last_read_id} (v{self.version})"
