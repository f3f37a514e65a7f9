"""The demo: a simulated year of arriving data, traffic and triggers, and its HTML report."""
