"""An example dataset: its spec, curated schema, landing and example request."""
