"""``python -m pipelines.examples.flights.demo``: the simulated year (see ``demo.py`` beside this file)."""

import sys

from pipelines.examples.flights.demo.demo import main

sys.exit(main())
