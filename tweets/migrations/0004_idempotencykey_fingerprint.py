from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tweets", "0003_tweet_media_idempotencykey"),
    ]

    operations = [
        migrations.AddField(
            model_name="idempotencykey",
            name="fingerprint",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
