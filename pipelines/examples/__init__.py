"""The example datasets: one folder each, with its spec, curated schema, landing and example request.

Everything specific to a dataset lives in its folder; the core (``components/``, the rest of
``pipelines/``) reads the spec and names no dataset.
"""

import os

EXAMPLES_DIR = os.path.dirname(os.path.abspath(__file__))
#: The example ``make run`` runs when no SPEC is given.
DEFAULT_SPEC = os.path.join(EXAMPLES_DIR, "flights", "spec.toml")
