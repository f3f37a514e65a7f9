"""The operational loop: triggers (new data, schedule, drift, accuracy) that start pipeline runs."""
