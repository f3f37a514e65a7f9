"""evaluate [Evaluator]: metrics of candidate and baseline on the same test span."""
