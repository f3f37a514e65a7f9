"""fingerprint [ExampleGen driver]: the data version of a window, so caching never hides new data."""
