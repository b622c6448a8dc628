"""Settings for a developer's machine: debug on, everything else from the environment."""
from .base import *  # noqa: F401,F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
