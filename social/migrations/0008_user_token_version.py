from django.db import migrations, models

# The author cache holds the token version (a reader's JWT is checked against it), so
# a change of it bumps the cache version (0006) and is logged for the replay (0004)
# like the other fields the cache holds.
CACHE_VERSION = """
CREATE OR REPLACE FUNCTION social_user_cache_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.username, NEW.display_name, NEW.is_active, NEW.is_private, NEW.date_joined, NEW.followers_count,
        NEW.following_count, NEW.token_version)
       IS DISTINCT FROM (OLD.username, OLD.display_name, OLD.is_active, OLD.is_private, OLD.date_joined,
                         OLD.followers_count, OLD.following_count, OLD.token_version) THEN
        NEW.cache_version := OLD.cache_version + 1;
    ELSE
        NEW.cache_version := OLD.cache_version;
    END IF;
    RETURN NEW;
END $$;
"""
CACHE_VERSION_BEFORE = """
CREATE OR REPLACE FUNCTION social_user_cache_version() RETURNS trigger LANGUAGE plpgsql AS $$
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
"""
ACCOUNT_CHANGED = """
CREATE OR REPLACE FUNCTION social_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO social_accountchange (user_id) VALUES (OLD.id);
    ELSIF NEW.is_active IS DISTINCT FROM OLD.is_active OR NEW.is_private IS DISTINCT FROM OLD.is_private
          OR NEW.display_name IS DISTINCT FROM OLD.display_name OR NEW.username IS DISTINCT FROM OLD.username
          OR NEW.token_version IS DISTINCT FROM OLD.token_version THEN
        INSERT INTO social_accountchange (user_id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END $$;
"""
ACCOUNT_CHANGED_BEFORE = """
CREATE OR REPLACE FUNCTION social_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO social_accountchange (user_id) VALUES (OLD.id);
    ELSIF NEW.is_active IS DISTINCT FROM OLD.is_active OR NEW.is_private IS DISTINCT FROM OLD.is_private
          OR NEW.display_name IS DISTINCT FROM OLD.display_name OR NEW.username IS DISTINCT FROM OLD.username THEN
        INSERT INTO social_accountchange (user_id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('social', '0007_moderator_group'),
    ]

    operations = [
        migrations.AddField(
            model_name='user',
            name='token_version',
            field=models.BigIntegerField(db_default=0, default=0),
        ),
        migrations.RunSQL(CACHE_VERSION, CACHE_VERSION_BEFORE),
        migrations.RunSQL(ACCOUNT_CHANGED, ACCOUNT_CHANGED_BEFORE),
    ]
