"""Local execution of the compiled pipeline: kfp.local with each task in its runtime's environment."""
