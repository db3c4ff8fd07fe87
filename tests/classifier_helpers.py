"""Tiny classifier artifacts for tests: all-zero n-gram heads, 2-d encoder heads that decide alone
("ngập" texts → civic flooding/construction/negative, others → traffic/police/positive)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nlp.classifiers import Featurizer, TextClassifiers
from nlp.taxonomy import SENTIMENT_LABELS


def two_d_artifacts(d: Path, meta: dict[str, Any], beta: float = 1.0) -> Path:
    """Write the artifacts into `d` with `meta`; topic and department heads fuse with weight `beta`."""
    f = Featurizer(n_bits=10)
    heads = {
        "civic": (["false", "true"], np.zeros((f.n_features, 1)), np.array([0.0])),
        "sentiment": (list(SENTIMENT_LABELS), np.zeros((f.n_features, 3)), np.zeros(3)),
        "topic": (["flooding", "traffic"], np.zeros((f.n_features, 2)), np.zeros(2)),
        "department": (["construction", "police"], np.zeros((f.n_features, 2)), np.zeros(2)),
    }
    dense = {
        "civic": (np.array([[4.0], [-4.0]]), np.array([0.0]), 1.0),
        "sentiment": (np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]]), np.zeros(3), 1.0),
        "topic": (np.array([[3.0, 0.0], [0.0, 3.0]]), np.zeros(2), beta),
        "department": (np.array([[3.0, 0.0], [0.0, 3.0]]), np.zeros(2), beta),
    }
    TextClassifiers.save_arrays(d, f, np.ones(f.n_features, dtype=np.float32), heads, meta, dense=dense)
    return d
