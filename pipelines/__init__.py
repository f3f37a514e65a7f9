"""The CT pipeline definition, its compiled YAML, and the local runner."""
