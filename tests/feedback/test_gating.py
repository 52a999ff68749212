"""The gating model: fitted in numpy, pulled toward the prior, refitted from the store."""

from __future__ import annotations

import random
import time
from pathlib import Path

from codeassist_lsp.config import FeedbackSettings
from codeassist_lsp.feedback import MIN_OWN_OUTCOMES, open_feedback
from codeassist_lsp.feedback.gating import GatingModel, fit, load_prior
from codeassist_lsp.feedback.outcomes import Outcome, SuggestionFeatures


def synthetic(n: int, seed: int = 7) -> list[tuple[SuggestionFeatures, int, bool]]:
    """Suggestions whose acceptance follows the model's confidence (as in the replay)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        mean = -rng.random() * 2
        tokens = rng.randint(1, 20)
        features = SuggestionFeatures(mean_logprob=mean, min_logprob=2 * mean, first_logprob=1.5 * mean,
                                      shown_tokens=tokens, generated_tokens=tokens + 1,
                                      finish_reason=rng.choice(["stop", "budget"]))
        rows.append((features, rng.randint(1, 60), rng.random() < 1 / (1 + 2.718 ** -(2 + 3 * mean))))
    return rows


def test_confident_suggestions_score_higher() -> None:
    model = fit(synthetic(400))
    sure = SuggestionFeatures(mean_logprob=-0.05, min_logprob=-0.1, generated_tokens=5)
    unsure = SuggestionFeatures(mean_logprob=-1.8, min_logprob=-3.6, generated_tokens=5)
    assert model.probability(sure, 20) > 0.7 > 0.2 > model.probability(unsure, 20)


def test_json_round_trip() -> None:
    model = fit(synthetic(100))
    assert GatingModel.from_json(model.to_json()) == model


def test_the_prior_holds_against_a_few_outcomes() -> None:
    prior = fit(synthetic(400))
    contrary = [(f, chars, not accepted) for f, chars, accepted in synthetic(10, seed=3)]
    updated = fit(contrary, prior=prior, l2=50.0)
    sure = SuggestionFeatures(mean_logprob=-0.05, min_logprob=-0.1, generated_tokens=5)
    assert updated.probability(sure, 20) > 0.5  # ten contrary outcomes do not turn the model around


def test_the_shipped_prior_loads() -> None:
    prior = load_prior()
    assert prior is not None and prior.samples > 0


def test_refit_on_the_users_own_outcomes(tmp_path: Path) -> None:
    recorder = open_feedback(FeedbackSettings(directory=str(tmp_path)))
    assert recorder is not None and recorder.store is not None
    assert recorder.refit() is None  # too few yet: the prior gates
    for n, (features, chars, accepted) in enumerate(synthetic(MIN_OWN_OUTCOMES + 10)):
        recorder.store.record(Outcome(id=str(n), outcome="accepted" if accepted else "rejected", reason="whole",
                                      shown_chars=chars, accepted_chars=chars if accepted else 0, features=features,
                                      shown_at=time.time(), decided_after_s=1.0))
    model = recorder.refit()
    assert model is not None and recorder.model is model
    prior = load_prior()
    assert model.samples == MIN_OWN_OUTCOMES + 10 + (prior.samples if prior else 0)
    recorder.close()


def test_outcomes_stored_before_first_logprob_are_not_refitted_on(tmp_path: Path) -> None:
    # Their confidence also scored the token after the shown text (the guess that ended it).
    recorder = open_feedback(FeedbackSettings(directory=str(tmp_path)))
    assert recorder is not None and recorder.store is not None
    for n, (features, chars, accepted) in enumerate(synthetic(MIN_OWN_OUTCOMES + 10)):
        older = SuggestionFeatures(mean_logprob=features.mean_logprob, min_logprob=features.min_logprob,
                                   generated_tokens=features.generated_tokens)
        recorder.store.record(Outcome(id=str(n), outcome="accepted" if accepted else "rejected", reason="whole",
                                      shown_chars=chars, accepted_chars=chars if accepted else 0, features=older,
                                      shown_at=time.time(), decided_after_s=1.0))
    assert recorder.refit() is None
    recorder.close()
