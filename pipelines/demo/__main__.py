"""``python -m pipelines.demo``: the simulated year (see ``pipelines/demo/demo.py``)."""

import sys

from pipelines.demo.demo import main

sys.exit(main())
