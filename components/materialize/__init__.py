"""materialize: the newest feature view readings into the online store, for serving."""
