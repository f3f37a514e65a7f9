"""``python -m pipelines.loop``: the watcher (see ``pipelines/loop/watch.py``)."""

import sys

from pipelines.loop.watch import main

sys.exit(main())
