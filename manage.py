#!/usr/bin/env python
"""Django's command-line utility for the home timeline service."""
import os
import sys


def main() -> None:
    # Production unless told otherwise: a developer opts in to config.settings.local
    # (DEBUG on, the development key), so no server ever starts with them by accident.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
