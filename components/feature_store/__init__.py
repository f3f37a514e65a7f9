"""The Feast feature store of the project (feature runtime): the feature views a dataset spec declares."""
