"""The Feast feature store of the project (feature runtime): the weather per origin and hour."""
