"""Where the project's code lives: the folder holding ``components/`` (a checkout, or ``/app`` in an image)."""

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
