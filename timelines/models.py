"""The one table of the timeline app: fan-outs not yet known to be complete."""
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
