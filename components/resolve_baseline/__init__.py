"""resolve_baseline [Resolver]: the model in production and its metrics, from ML Metadata."""
