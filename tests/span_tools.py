"""Changes span files of a test source the way real feeds go wrong (run with the data runtime).

Usage: ``python tests/span_tools.py SOURCE SPAN KIND`` where KIND is one of
missing_column, unexpected_column, changed_type, out_of_domain, empty_span,
drop_last_row, shuffle_labels.
"""

import os
import sys

import numpy as np
import pandas as pd

from components.extract.source import SPAN_FILE


def corrupt(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Returns the span's rows changed according to ``kind``."""
    frame = frame.copy()
    if kind == "missing_column":
        return frame.drop(columns=["carrier"])
    if kind == "unexpected_column":
        frame["seat_pitch"] = 31.0
    elif kind == "changed_type":
        frame["distance"] = frame["distance"].astype(str)
    elif kind == "out_of_domain":
        frame.loc[frame.index[:50], "carrier"] = "ZZ"
    elif kind == "empty_span":
        return frame.iloc[:0]
    elif kind == "drop_last_row":
        return frame.iloc[:-1]
    elif kind == "shuffle_labels":
        frame["arr_delay"] = np.random.default_rng(0).permutation(frame["arr_delay"].to_numpy())
    else:
        raise ValueError(f"unknown kind {kind}")
    return frame


def main() -> int:
    """Rewrites one span file in place."""
    source, span, kind = sys.argv[1:4]
    path = os.path.join(source, span, SPAN_FILE)
    corrupt(pd.read_parquet(path), kind).to_parquet(path, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
