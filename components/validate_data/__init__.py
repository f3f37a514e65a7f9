"""validate_data [StatisticsGen, SchemaGen, ExampleValidator, DistributionValidator]."""
