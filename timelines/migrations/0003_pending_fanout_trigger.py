"""Every tweet inserted gets its ``PendingFanout`` row from PostgreSQL itself, in the
inserting statement's transaction: a trigger on the tweet table, owned by this app.

A post then writes the author's row, the tweet and the pending fan-out in one
statement (``tweets.services``), and no way of inserting a tweet can leave it
without the row the reconciler needs to deliver it."""
from django.db import migrations

FUNCTION = "timelines_pending_fanout"

CREATE = f"""
CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO timelines_pendingfanout (tweet_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER {FUNCTION} AFTER INSERT ON tweets_tweet FOR EACH ROW EXECUTE FUNCTION {FUNCTION}();
"""

DROP = f"""
DROP TRIGGER {FUNCTION} ON tweets_tweet;
DROP FUNCTION {FUNCTION}();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('timelines', '0002_pending_follow_update'),
        ('tweets', '0005_snowflakelease'),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
