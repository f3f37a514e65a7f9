"""Online experiments: two versions serving at once, and the rule that decides between them."""
