"""Evidence → probability: the logistic calibration the proxy grades with (runtime part only).

The numbers ship as ``assets/calibration.json`` so grading never refits. Fitting them is tooling,
in :mod:`edgemed.judges.proxy.tuning` (``python -m edgemed.judges.proxy.tuning fit``).

The target is "the response makes the claim"; omission-phrased criteria ("Fails to ...") are
flipped before fitting, so one model serves positive items and pitfalls alike.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemed.errors import ConfigError
from edgemed.judges.proxy.features import FEATURES


@dataclass(frozen=True)
class Calibration:
    """Standardise features, then a logistic link.

    >>> c = Calibration(("a",), np.array([0.0]), np.array([1.0]), np.array([2.0]), 0.0)
    >>> round(float(c.probability(np.array([[0.0], [1.0]]))[1]), 3)
    0.881
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "weights": self.weights.tolist(), "bias": self.bias}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        return cls(tuple(d["features"]), np.array(d["mean"]), np.array(d["scale"]),
                   np.array(d["weights"]), float(d["bias"]))

    def digest(self) -> str:
        """Short hash of the numbers: part of the judge's fingerprint."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def default_calibration_path() -> Path:
    """The shipped asset, next to this module."""
    return Path(__file__).parent / "assets" / "calibration.json"


def load_calibration(path: str | Path | None = None) -> Calibration:
    """The shipped calibration (or one written by the tuning CLI), checked against the feature list.

    >>> load_calibration().features[0]
    'similarity'
    """
    path = Path(path) if path else default_calibration_path()
    try:
        cal = Calibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, KeyError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the proxy calibration ({e})") from None
    if cal.features != FEATURES:
        raise ConfigError(f"{path}: calibrated for features {cal.features}, the proxy computes {FEATURES}; "
                          "refit with python -m edgemed.judges.proxy.tuning fit")
    return cal
