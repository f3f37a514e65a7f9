"""Benchmark scripts: run on demand (`make bench-serving`), they print figures; not collected as tests."""
