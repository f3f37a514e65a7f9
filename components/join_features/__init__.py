"""join_features: the rows with their feature views' features, point-in-time, from the feature store."""
