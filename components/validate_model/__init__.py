"""validate_model [Evaluator blessing]: value and change thresholds; writes the blessing."""
