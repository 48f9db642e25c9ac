"""Evidence → probability: an L2-regularised logistic regression over the proxy's features.

Fitted on the ``tune`` split of the labelled cases only, and shipped as
``assets/proxy_calibration.json`` so grading never refits. Refit after changing a feature or a case:

    python -m edgemed.judges.proxy_calibration            # writes the asset, prints tune accuracy

The target is "the response makes the claim"; omission-phrased criteria ("Fails to ...") are
flipped before fitting, so one model serves positive items and pitfalls alike.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemed.errors import ConfigError
from edgemed.io import write_json_atomic

L2 = 1.0  # mild: six features, ~300 cases; keeps weights stable when a case is added or removed
NEWTON_STEPS = 50


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


def fit_logistic(x: np.ndarray, y: np.ndarray, features: tuple[str, ...], l2: float = L2) -> Calibration:
    """Newton's method on the L2-penalised log-loss; deterministic, no random init.

    >>> x = np.array([[0.1], [0.2], [0.8], [0.9]]); y = np.array([0, 0, 1, 1])
    >>> c = fit_logistic(x, y, ("s",))
    >>> [round(float(p)) for p in c.probability(x)]
    [0, 0, 1, 1]
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = np.c_[(x - mean) / scale, np.ones(len(x))]
    penalty = np.diag([l2] * x.shape[1] + [0.0])  # the bias is not shrunk
    w = np.zeros(z.shape[1])
    for _ in range(NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-z @ w))
        grad = z.T @ (p - y) + penalty @ w
        hess = (z * (p * (1 - p))[:, None]).T @ z + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return Calibration(tuple(features), mean, scale, w[:-1], float(w[-1]))


def default_calibration_path() -> Path:
    return Path(__file__).parent / "assets" / "proxy_calibration.json"


def load_calibration(path: str | Path | None = None) -> Calibration:
    """The shipped calibration (or one written by :func:`main`), checked against the feature list.

    >>> load_calibration().features[0]
    'similarity'
    """
    from edgemed.judges.proxy_features import FEATURES

    path = Path(path) if path else default_calibration_path()
    try:
        cal = Calibration.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, KeyError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read the proxy calibration ({e})") from None
    if cal.features != FEATURES:
        raise ConfigError(f"{path}: calibrated for features {cal.features}, the proxy computes {FEATURES}; "
                          "refit with python -m edgemed.judges.proxy_calibration")
    return cal


def main(argv: list[str] | None = None) -> None:
    """Refit on the tune split and write the calibration asset."""
    from edgemed.judges.proxy import case_features
    from edgemed.judges.proxy_cases import load_cases
    from edgemed.judges.proxy_features import FEATURES

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=None, help="labelled JSONL (default: the shipped set)")
    ap.add_argument("--out", default=str(default_calibration_path()))
    args = ap.parse_args(argv)
    cases = load_cases(args.cases, split="tune")
    x, absent = case_features(cases)
    met = np.array([c["met"] for c in cases], dtype=np.float64)
    present = np.where(absent, 1.0 - met, met)
    cal = fit_logistic(x, present, FEATURES)
    out = cal.to_dict() | {"fitted_on": {"split": "tune", "cases": len(cases), "l2": L2}}
    write_json_atomic(args.out, out)
    prob = cal.probability(x)
    acc = float(np.mean((np.where(absent, 1 - prob, prob) >= 0.5) == met.astype(bool)))
    print(f"proxy calibration: {len(cases)} tune cases, in-sample accuracy {acc:.3f} -> {args.out}")


if __name__ == "__main__":
    main()
