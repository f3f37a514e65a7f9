"""materialize: the newest weather features into the online store, for serving."""
