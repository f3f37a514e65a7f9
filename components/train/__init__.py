"""train [Trainer]: fit the sklearn pipeline (preprocessing + model) on the training split."""
