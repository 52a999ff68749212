"""Confidence gating: P(accept) from a shown suggestion's features, a logistic regression in numpy.

The prior (prior.json) is fitted offline by benchmarks/acceptance_bench.py on replayed real files;
`fit` refits it on the user's own outcomes, pulled toward the prior (L2 around its weights), so a
few outcomes change little and many change much.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from codeassist_lsp.feedback.outcomes import SuggestionFeatures

PRIOR_PATH = Path(__file__).with_name("prior.json")
FEATURE_NAMES = ("mean_logprob", "min_logprob", "first_logprob", "text_logprob", "log_chars", "log_tokens", "block",
                 "new_line", "empty_line", "cut_at_guess")
# Suggestions without log-probabilities (cache hits) are scored as if the model were this sure.
MISSING_LOGPROB = -0.5


def feature_vector(features: SuggestionFeatures, chars: int) -> list[float]:
    """The numbers the model reads, in FEATURE_NAMES order (log-probabilities of the shown tokens)."""
    mean = features.mean_logprob if features.mean_logprob is not None else MISSING_LOGPROB
    low = features.min_logprob if features.min_logprob is not None else MISSING_LOGPROB
    first = features.first_logprob if features.first_logprob is not None else low
    tokens = features.shown_tokens or features.generated_tokens or 1
    # text_logprob: the model's log-probability of writing exactly the shown text.
    return [mean, low, first, mean * tokens, math.log1p(chars), math.log1p(tokens),
            float(features.mode == "block"), float(features.mode == "new-line"),
            float(features.context_kind == "empty-line"), float(features.finish_reason == "budget")]


@attrs.frozen
class GatingModel:
    """Weights over standardised features; `probability` costs a few microseconds."""

    weights: tuple[float, ...]
    """Bias first, then one weight per feature."""
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    samples: int = 0

    def probability(self, features: SuggestionFeatures, chars: int) -> float:
        """P(the user accepts this suggestion whole)."""
        score = self.weights[0]
        for value, weight, mean, scale in zip(feature_vector(features, chars), self.weights[1:], self.mean,
                                              self.scale):
            score += weight * (value - mean) / scale
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, score))))

    def to_json(self) -> dict[str, Any]:
        """The model as JSON (prior.json)."""
        return {"features": list(FEATURE_NAMES), "weights": list(self.weights), "mean": list(self.mean),
                "scale": list(self.scale), "samples": self.samples}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GatingModel:
        """Read a model written by to_json; refuses one made for other features."""
        if tuple(data["features"]) != FEATURE_NAMES:
            raise ValueError("the gating model was fitted on other features")
        return cls(tuple(data["weights"]), tuple(data["mean"]), tuple(data["scale"]), int(data.get("samples", 0)))


def load_prior(path: Path = PRIOR_PATH) -> GatingModel | None:
    """The offline prior, or None when there is none (gating then shows everything)."""
    try:
        return GatingModel.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError):
        return None


@functools.cache
def shipped_prior() -> GatingModel | None:
    """The prior that ships with codeassist, read once."""
    return load_prior()


def fit(rows: Sequence[tuple[SuggestionFeatures, int, bool]], prior: GatingModel | None = None,
        l2: float = 1.0, iterations: int = 25) -> GatingModel:
    """Logistic regression (Newton's method) on (features, shown chars, accepted) rows.

    With a prior, its standardisation is kept and the weights are pulled toward its weights.
    """
    x = np.array([feature_vector(f, chars) for f, chars, _ in rows], dtype=float)
    y = np.array([1.0 if accepted else 0.0 for _, _, accepted in rows])
    if prior is not None:
        mean, scale = np.array(prior.mean), np.array(prior.scale)
        center = np.array(prior.weights)
    else:
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale < 1e-6] = 1.0
        center = np.zeros(x.shape[1] + 1)
    design = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 1e-6  # the bias is not shrunk
    w = center.copy()
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30, 30)))
        gradient = design.T @ (p - y) + penalty * (w - center)
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return GatingModel(tuple(float(v) for v in w), tuple(float(v) for v in mean), tuple(float(v) for v in scale),
                       samples=len(rows) + (prior.samples if prior else 0))
