"""The timeline app's two tables: the fan-outs and the follow updates not yet known to be complete.

Each row is written in the transaction of the change it follows up and deleted
once that follow-up ran; a row that outlives its grace period is replayed by
beat, so nothing that failed after a commit stays undone."""
from django.db import models


class PendingFanout(models.Model):
    """A tweet whose delivery to timelines has not finished yet.

    Inserted in the same transaction as the tweet, deleted when the last batch
    of its fan-out has been written. A row that outlives
    ``FANOUT_RECONCILE_AFTER_SECONDS`` (broker down at post time, a worker
    killed mid-batch) is picked up by the reconciler, which completes the
    fan-out. The table only ever holds the fan-outs in flight.
    """

    tweet = models.OneToOneField("tweets.Tweet", on_delete=models.CASCADE, primary_key=True, related_name="+")

    def __str__(self) -> str:
        return f"fan-out of {self.tweet_id}"


class PendingFollowUpdate(models.Model):
    """A follow change whose cached timeline update has not been applied yet.

    Inserted in the same transaction as the follow change (by the receiver of
    ``social.signals.follow_changed``), deleted once the update ran after
    commit. A row that outlives ``FOLLOW_UPDATE_REPLAY_AFTER_SECONDS`` (Redis
    unreachable at that moment, the process killed) is replayed by
    ``services.follow_updates_replay``: the user's graph is invalidated and
    the timeline dropped, to be rebuilt from PostgreSQL on the next read. So an
    unfollow takes effect within seconds whatever fails after its commit.
    """

    user_id = models.BigIntegerField()  # the follower, whose timeline and graph are stale
    created_at = models.DateTimeField(db_default=models.functions.Now())

    def __str__(self) -> str:
        return f"follow update of {self.user_id}"
