"""prepare [Transform]: label, deterministic split (time-based test span, hashed train/eval)."""
