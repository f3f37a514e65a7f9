"""The model server of the serving runtime: a small ``kserve.Model`` around the sklearn pipeline."""
