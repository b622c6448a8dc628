"""Factories that create data the way users do: through the services."""
import factory

from social import services as social_services
from social.models import User
from tweets import services as tweet_services
from tweets.models import Tweet

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Faker("name")

    @classmethod
    def _create(cls, model_class, username, display_name="", is_private=False, **kwargs):
        user = social_services.user_register(username=username, password=PASSWORD, display_name=display_name[:50])
        if is_private:
            user = social_services.user_update(user=user, is_private=True)
        return user


class TweetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tweet

    author = factory.SubFactory(UserFactory)
    content = factory.Faker("sentence")

    @classmethod
    def _create(cls, model_class, author, content):
        return tweet_services.tweet_create(author=author, content=content)
