"""The CT pipeline (ct/), its local execution (local/), the operational loop (loop/) and the demo (demo/)."""
