"""The monitor: prediction logs, ground truth, serving statistics, skew, drift and degradation."""
