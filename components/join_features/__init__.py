"""join_features: the flights with the weather features, point-in-time, from the feature store."""
