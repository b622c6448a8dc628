from django.db import migrations, models

# The version the author cache orders its entries by (social.cache): bumped in the
# UPDATE itself, so it grows in commit order (writers of one row queue on its lock),
# and ignoring whatever value the writer sent (a save() of a stale instance).
FUNCTION = """
CREATE FUNCTION social_user_cache_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.username, NEW.display_name, NEW.is_active, NEW.is_private, NEW.date_joined, NEW.followers_count,
        NEW.following_count)
       IS DISTINCT FROM (OLD.username, OLD.display_name, OLD.is_active, OLD.is_private, OLD.date_joined,
                         OLD.followers_count, OLD.following_count) THEN
        NEW.cache_version := OLD.cache_version + 1;
    ELSE
        NEW.cache_version := OLD.cache_version;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER social_user_cache_version BEFORE UPDATE ON social_user
    FOR EACH ROW EXECUTE FUNCTION social_user_cache_version();
"""
DROP = """
DROP TRIGGER social_user_cache_version ON social_user;
DROP FUNCTION social_user_cache_version();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('social', '0005_follow_index_with_state'),
    ]

    operations = [
        migrations.AddField(
            model_name='user',
            name='cache_version',
            field=models.BigIntegerField(default=0),
        ),
        migrations.RunSQL(FUNCTION, DROP),
    ]
