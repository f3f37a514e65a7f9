"""The training runtime's view of some flights (run with the train runtime): features and predictions.

Usage: ``python tests/e2e/training_side.py JOINED_SPAN.parquet MODEL_DIR ROWS OUT.json``. Writes a
seeded sample of the span's flights as the model was trained on them (the feature store's
point-in-time join): the request without the weather, the weather trained on, and
``Pipeline.predict_proba`` of the train runtime.
"""

import json
import sys


def main() -> int:
    """Writes the sample."""
    import pandas as pd

    from components import model_files
    from pipelines.examples.flights import dataset

    joined, model_dir, rows, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    frame = pd.read_parquet(joined).sample(n=rows, random_state=7)
    probabilities = model_files.load_model(model_dir).predict_proba(frame[dataset.FEATURES])[:, 1]
    with open(out, "w", encoding="utf-8") as handle:
        json.dump({"instances": json.loads(frame[dataset.FLIGHT_FEATURES].to_json(orient="records")),
                   "weather": {name: [None if v != v else v for v in frame[name].tolist()]
                               for name in dataset.WEATHER_FEATURES},
                   "probabilities": probabilities.tolist()}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
