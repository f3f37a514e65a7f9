"""The served model: a loaded model folder and its prediction path.

``Pipeline.predict_proba`` validates its input on every call, twice (the ColumnTransformer and
the HistGradientBoostingClassifier each check and convert the frame): measured here, 1.9 ms
for one row of which the trees take a small part. ``CompiledPredictor`` does once, at load,
what those checks establish for every call, and per request only what the fitted model
computes: it encodes the categorical columns with a table built by the fitted encoders
themselves (the pipeline's ``OrdinalEncoder`` then the classifier's own inner encoder), and
sums the fitted trees' outputs in the order ``_raw_predict`` does, so its probabilities are
bit-for-bit those of ``Pipeline.predict_proba``. That is checked at load on rows holding every
known category, an unknown one, missing values and extreme numbers, and the model falls back
to ``Pipeline.predict_proba`` (saying so) if the check fails or the pipeline has another shape.

The private scikit-learn attributes used follow
``sklearn/ensemble/_hist_gradient_boosting/gradient_boosting.py`` (``_raw_predict``,
``_predict_iterations``, ``_preprocess_X``) of scikit-learn 1.7.2, the version the images pin.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import numpy as np

from components import model_files

SKLEARN_VERSIONS = ("1.7.",)  # the versions whose private prediction path CompiledPredictor follows


class CompiledPredictor:
    """Probabilities (a regressor: values) of the fitted pipeline from checked columns, without per-call validation."""

    def __init__(self, pipeline, features: list[str], categorical: list[str], threads: int = 1):
        """Builds the encoding tables from the fitted pipeline.

        Raises:
            ValueError: The pipeline is not the ColumnTransformer(OrdinalEncoder, passthrough)
                + HistGradientBoostingClassifier (or Regressor) shape this follows, or
                scikit-learn is another version.
        """
        import sklearn
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data

        if not sklearn.__version__.startswith(SKLEARN_VERSIONS):
            raise ValueError(f"scikit-learn {sklearn.__version__} is not one of {SKLEARN_VERSIONS}")
        encode, model = pipeline.named_steps.get("encode"), pipeline.named_steps.get("model")
        kinds = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
        if encode is None or model is None or type(model).__name__ not in kinds:
            raise ValueError("the pipeline is not encode (ColumnTransformer) + model (HistGradientBoosting"
                             "Classifier or Regressor)")
        self.regression = type(model).__name__ == "HistGradientBoostingRegressor"
        if list(encode.get_feature_names_out()) != list(features) or model.n_trees_per_iteration_ != 1:
            raise ValueError("the encoder's output columns are not the model's features in order")
        self.features = list(features)
        self.categorical = [f for f in features if f in set(categorical)]
        if self.features[: len(self.categorical)] != self.categorical:
            raise ValueError("the categorical features do not come first (the classifier's inner encoder puts "
                             "them first)")
        self.threads = threads
        self._predict_tree = _predict_from_raw_data
        self._model = model
        self._baseline = model._baseline_prediction
        self._trees = [predictors[0] for predictors in model._predictors]
        self._bitsets, self._feature_map = model._bin_mapper.make_known_categories_bitsets()
        self._forest, self._forest_bitsets = _forest(self._trees, len(self.features))
        #: Rows per pass of the forest: each row goes through every tree, so a pass holds trees x rows rows.
        self._rows_per_pass = max(1, _FOREST_PASS_ROWS // max(1, len(self._trees)))
        #: Per categorical feature: ({category or None: code the trees see}, code of any other value).
        self.codes = self._encoding_tables(pipeline)

    def _through_forest(self, matrix: np.ndarray, out: np.ndarray) -> None:
        """Every tree's output for every row (``out[tree, row]``), the forest walked once per (tree, row) pair.

        A pair is a row of the matrix with the tree's number as its last column, which the routing
        nodes send to that tree's root (``_forest``); a pass holds at most ``_FOREST_PASS_ROWS`` pairs.
        """
        trees, width = len(self._trees), len(self.features) + 1
        for start in range(0, len(matrix), self._rows_per_pass):
            part = matrix[start:start + self._rows_per_pass]
            pairs = np.empty((trees, len(part), width), dtype=np.float64)
            pairs[:, :, :-1] = part
            pairs[:, :, -1] = np.arange(trees, dtype=np.float64)[:, None]
            walked = np.empty(trees * len(part), dtype=np.float64)
            self._predict_tree(self._forest, pairs.reshape(-1, width), self._forest_bitsets, self._bitsets,
                               self._feature_map, self.threads, walked)
            out[:, start:start + len(part)] = walked.reshape(trees, len(part))

    def _encoding_tables(self, pipeline) -> dict[str, tuple[dict, float]]:
        """Per categorical feature: {category or None: code the trees see} and the code of any other value.

        The codes come from running the fitted encoders themselves on every known category, a
        missing value and one value they never saw, so this cannot drift from what the pipeline does.
        """
        import pandas as pd

        encode, model = pipeline.named_steps["encode"], pipeline.named_steps["model"]
        outer = encode.named_transformers_["categorical"]
        tables = {}
        # While one column is probed the others hold a known category each; only its codes are read.
        some_known = {f: next(c for c in outer.categories_[i] if isinstance(c, str))
                      for i, f in enumerate(self.categorical)}
        for position, name in enumerate(self.categorical):
            known = [c for c in outer.categories_[position] if isinstance(c, str)]
            probe = [*known, None, "\x00never-seen"]
            frame = pd.DataFrame({f: (probe if f == name else [some_known[f]] * len(probe))
                                  for f in self.categorical})
            outer_codes = outer.transform(frame)
            inner_input = np.zeros((len(probe), len(self.features)))
            inner_input[:, : len(self.categorical)] = outer_codes
            inner = model._preprocessor.transform(inner_input) if model._preprocessor is not None else inner_input
            column = inner[:, self.features.index(name)]
            tables[name] = ({category: float(code) for category, code in zip(probe[:-1], column[:-1])},
                            float(column[-1]))
        return tables

    def predict(self, columns: dict[str, Any], rows: int, forest: Optional[bool] = None) -> np.ndarray:
        """Probability of the positive class per row, as ``Pipeline.predict_proba(...)[:, 1]``.

        ``forest``: all trees in one pass (``_forest``), or tree by tree; by default the faster for ``rows``.
        """
        matrix = np.empty((rows, len(self.features)), dtype=np.float64)
        for position, name in enumerate(self.features):
            if name in self.codes:
                table, other = self.codes[name]
                matrix[:, position] = list(map(table.get, columns[name], [other] * rows))
            else:
                matrix[:, position] = columns[name]
        # As _raw_predict: zeros + baseline, then each iteration's tree added in order. Each tree
        # writes its own row; an accumulation along the first axis then adds the rows in order, one
        # after another, as _raw_predict's loop of adds does. (A reduction did so only while that axis was
        # strided: for one row it is contiguous, numpy then sums pairwise, and a 1-row request's
        # probability could differ from Pipeline.predict_proba's in the last bit.)
        # The trees' outputs come from one pass of the forest for a few rows (one call, not one per
        # tree), tree by tree for more (cheaper per row).
        terms = np.empty((len(self._trees) + 1, rows), dtype=np.float64)
        terms[0] = np.zeros(rows, dtype=self._baseline.dtype) + self._baseline.ravel()
        if rows < FOREST_BELOW_ROWS if forest is None else forest:
            self._through_forest(matrix, terms[1:])
        else:
            for row, tree in enumerate(self._trees, start=1):
                self._predict_tree(tree.nodes, matrix, tree.raw_left_cat_bitsets, self._bitsets,
                                   self._feature_map, self.threads, terms[row])
        raw = np.add.accumulate(terms, axis=0)[-1].reshape(rows, 1)
        if self.regression:  # as HistGradientBoostingRegressor.predict
            return self._model._loss.link.inverse(raw.ravel())
        return self._model._loss.predict_proba(raw)[:, 1]


#: Below this many rows the trees' outputs come from one pass of the forest, from it on tree by tree: measured
#: for 100 trees, 1 row 0.24 -> 0.012 ms, 20 rows 0.30 -> 0.16 ms, 40 rows 0.35 -> 0.32 ms, 100 rows 0.51 -> 0.80 ms
#: (a pair costs more in the forest, a call less).
FOREST_BELOW_ROWS = 32

#: At most this many (tree, row) pairs per pass of the forest (``CompiledPredictor.predict``): 1.5 MB a pass for
#: 13 features, whatever the request's size.
_FOREST_PASS_ROWS = 16_384


def _forest(trees: list, features: int) -> tuple[np.ndarray, np.ndarray]:
    """The fitted trees as one tree: routing nodes on an extra last column (the tree's number) lead to each root.

    ``_predict_from_raw_data`` (sklearn/ensemble/_hist_gradient_boosting/_predictor.pyx, 1.7.2) walks one
    node array from node 0 for each row: numeric nodes send a value ``<= num_threshold`` left, categorical
    ones look up ``raw_left_cat_bitsets[bitset_idx]``, children are indices into the array. Here the first
    ``len(trees) - 1`` nodes split the tree numbers in halves (thresholds k - 0.5); each tree's nodes follow,
    their child and bitset indices moved by where the tree's nodes and bitsets now start. A row whose last
    column holds k reaches tree k's root and from there visits exactly the nodes it visits alone, so its
    output is that tree's, bit for bit (checked at load against ``Pipeline.predict_proba``).

    Returns:
        The node array and the trees' categorical bitsets, stacked.
    """
    if not trees:
        raise ValueError("the model has no tree")
    routing: list[list[int]] = []  # per routing node: [left child, right child, the first tree on the right]

    def place(first: int, end: int) -> int:
        """The node leading to trees [first, end): a routing node's index, or -1 - k for tree k's root."""
        if end - first == 1:
            return -1 - first
        index = len(routing)
        routing.append([0, 0, 0])
        middle = (first + end) // 2
        routing[index] = [place(first, middle), place(middle, end), middle]
        return index

    place(0, len(trees))
    starts, bitset_starts, total, bitset_total = [], [], len(routing), 0
    for tree in trees:
        starts.append(total)
        bitset_starts.append(bitset_total)
        total += len(tree.nodes)
        bitset_total += len(tree.raw_left_cat_bitsets)
    nodes = np.zeros(total, dtype=trees[0].nodes.dtype)
    for index, (left, right, middle) in enumerate(routing):
        nodes["feature_idx"][index] = features
        nodes["num_threshold"][index] = middle - 0.5
        nodes["left"][index] = starts[-1 - left] if left < 0 else left
        nodes["right"][index] = starts[-1 - right] if right < 0 else right
    for tree, start, bitset_start in zip(trees, starts, bitset_starts):
        block = tree.nodes.copy()
        inner = block["is_leaf"] == 0
        block["left"][inner] += start
        block["right"][inner] += start
        block["bitset_idx"][block["is_categorical"] == 1] += bitset_start
        nodes[start:start + len(block)] = block
    bitsets = np.concatenate([tree.raw_left_cat_bitsets for tree in trees]) if bitset_total else \
        np.zeros((1, 8), dtype=trees[0].raw_left_cat_bitsets.dtype)
    return nodes, np.ascontiguousarray(bitsets)


def pipeline_predict(pipeline, features: list[str], numeric: list[str], columns: dict[str, Any],
                     task: str = "binary_classification") -> np.ndarray:
    """``Pipeline.predict_proba(frame)[:, 1]`` (a regression: ``Pipeline.predict``) on checked columns."""
    import pandas as pd

    frame = pd.DataFrame({name: (columns[name] if name in numeric else np.array(columns[name], dtype=object))
                          for name in features}, copy=False)
    if task == "regression":
        return np.asarray(pipeline.predict(frame), dtype="float64")
    return pipeline.predict_proba(frame)[:, 1]


def probe_columns(predictor: CompiledPredictor, info: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Rows that reach every encoding and both sides of every split: each category, an unknown, missing values."""
    rng = np.random.default_rng(0)
    lengths = [len(predictor.codes[name][0]) + 1 for name in predictor.categorical]
    rows = max(lengths + [64])
    columns: dict[str, Any] = {}
    for name in info["features"]:
        if name in predictor.codes:
            values = [*predictor.codes[name][0], "\x00unknown"]  # the table holds None too
            columns[name] = [values[i % len(values)] for i in range(rows)]
        else:
            column = rng.normal(0, 1e3, rows)
            column[::7] = np.nan
            column[1::11] = 0.0
            columns[name] = column
    return columns, rows


class LoadedModel:
    """A loaded model folder: the sklearn pipeline, its description, version and prediction path."""

    def __init__(self, model_dir: str, version: str, threads: int = 1, compiled: bool = True):
        """Loads ``model.joblib`` and ``model.json`` from ``model_dir`` and chooses the prediction path.

        Args:
            model_dir: The model folder.
            version: The version named in responses.
            threads: OpenMP threads per prediction.
            compiled: Try the compiled path (falls back to the pipeline when it cannot be proven equal).
        """
        from threadpoolctl import ThreadpoolController

        from components.schema_domains import read_domains

        self.model_dir = model_dir
        self.version = version
        self.threads = threads
        # OpenMP's thread count is per calling thread: kserve predicts in worker threads, where a limit set
        # at start does not hold (measured, a regressor's single row: p99 240 ms with 2 threads on 2 busy
        # cores, 5 ms limited per call).
        self._controller = ThreadpoolController()
        self.info = model_files.read_info(model_dir)
        lookup = self.info.get("lookup")
        if lookup is not None and not (isinstance(lookup, dict) and lookup.get("views")):
            raise ValueError(f"{model_dir}/model.json: its lookup block has no feature views (written before "
                             "lookups followed the dataset spec's [[feature_views]]): train and deploy it again")
        self.task = self.info.get("task", "binary_classification")
        self.pipeline = model_files.load_model(model_dir)
        #: The domains of the schema the model was trained under (the skew guard), {} when it has none.
        self.domains = read_domains(model_files.schema_path(model_dir)) \
            if os.path.exists(model_files.schema_path(model_dir)) else {}
        self.compiled: Optional[CompiledPredictor] = None
        self.path_note = "Pipeline.predict_proba" if self.task != "regression" else "Pipeline.predict"
        if compiled:
            self._compile(threads)

    def _compile(self, threads: int) -> None:
        try:
            predictor = CompiledPredictor(self.pipeline, self.info["features"], self.info["categorical_features"],
                                          threads)
            columns, rows = probe_columns(predictor, self.info)
            one = {name: values[:1] for name, values in columns.items()}  # a single row sums along another axis
            for probe, count in ((columns, rows), (one, 1)):
                expected = self.reference_predict(probe)
                for forest in (False, True):  # both ways the trees' outputs can come
                    got = predictor.predict(probe, count, forest=forest)
                    if not np.array_equal(expected, got):
                        raise ValueError(f"differs from {self.path_note} on {int((expected != got).sum())} of "
                                         f"{count} probe rows ({'forest' if forest else 'tree by tree'})")
        except (ValueError, KeyError, AttributeError, ImportError, TypeError) as error:
            print(f"{os.path.basename(os.path.normpath(self.model_dir))}: serving with {self.path_note}, "
                  f"the compiled path is not used: {error}", flush=True)
            return
        self.compiled = predictor
        self.path_note = f"compiled (bit-for-bit equal to {self.path_note} on the load-time probe)"

    def reference_predict(self, columns: dict[str, Any]) -> np.ndarray:
        """Probabilities through ``Pipeline.predict_proba``."""
        with self._controller.limit(limits=self.threads, user_api="openmp"):
            return pipeline_predict(self.pipeline, self.info["features"], self.info["numeric_features"], columns,
                                    self.task)

    def predict(self, columns: dict[str, Any], rows: int) -> np.ndarray:
        """Probabilities of the positive class (a regression: predicted values) for checked columns."""
        if self.compiled is not None:
            return self.compiled.predict(columns, rows)
        return self.reference_predict(columns)


def compare_paths(model_dir: str, frame) -> dict[str, Any]:
    """Predicts ``frame`` (a DataFrame of the model's features) compiled and through the pipeline, bit for bit.

    The compiled path both ways: tree by tree and through the forest.

    Returns:
        Rows compared, rows that differ, the largest absolute difference and the path the
        server would use.
    """
    model = LoadedModel(model_dir, "compare")
    info = model.info
    columns = {name: (frame[name].to_numpy(dtype="float64") if name in info["numeric_features"]
                      else [None if value is None or value != value else value for value in frame[name].tolist()])
               for name in info["features"]}
    reference = model.reference_predict(columns)
    if model.compiled is None:
        return {"rows": len(frame), "differing_rows": None, "max_abs_difference": None, "path": model.path_note}
    # Both ways the compiled path computes the trees' outputs (a request takes one by its size).
    by_tree, forest = (model.compiled.predict(columns, len(frame), forest=way) for way in (False, True))
    differing = (by_tree != reference) | (forest != reference)
    return {"rows": len(frame), "differing_rows": int(np.count_nonzero(differing)),
            "max_abs_difference": float(max(np.max(np.abs(by_tree - reference)),
                                            np.max(np.abs(forest - reference)))) if len(frame) else 0.0,
            "path": model.path_note}


def compare_on_source(model_dir: str, source_uri: str, spec) -> dict[str, Any]:
    """``compare_paths`` on every row of every span of a source (a span folder or ``s3://`` prefix).

    Each span's rows get the feature views' features by the plain join (the feature store's
    point-in-time join gives the same values: ``tests/unit/feature``); a span without a view's
    feed file must carry those features itself.

    Raises:
        ValueError: The source holds no span.
    """
    import pandas as pd

    from components.sources import read_joined_spans

    frames = read_joined_spans(source_uri, spec)
    return {"spans": len(frames), **compare_paths(model_dir, pd.concat(frames.values(), ignore_index=True))}
