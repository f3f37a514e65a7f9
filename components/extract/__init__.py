"""extract [ExampleGen]: read spans from a source, write one Parquet dataset."""
