"""The CT pipeline itself: its definition, the compiled spec and its delivery to a Kubeflow cluster.

Depends on the components only; the local runner, the loop and the demo depend on it, never the reverse.
"""
