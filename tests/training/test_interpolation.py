"""The worker's way back toward the base network: weight interpolation chosen the way the gate judges."""

from __future__ import annotations

import numpy as np
import torch
from training.retrain_support import synthetic_frame, tiny_model

from tnseg_desktop.training.data import Sample
from tnseg_desktop.training.worker import _evaluate, _interpolate_with_base


def _samples(seed: int, n: int, invert: bool = False) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img, mask = synthetic_frame(rng)
        out.append(Sample(f"s{seed}-{i}", img, (~mask if invert else mask).astype(np.uint8)))
    return out


def _run(base_before: float, alphas=(1.0, 0.5, 0.25)):
    base, tuned = tiny_model(0).eval(), tiny_model(1).eval()
    tuned_weights = {k: v.clone() for k, v in tuned.state_dict().items()}
    user, base_set = _samples(1, 4, invert=True), _samples(2, 4)
    events: list[dict] = []
    result, alpha = _interpolate_with_base(tuned, base, alphas, user, base_set, base_before, 0.01, "cpu", lambda: False,
                                           events.append)
    return base, tuned, tuned_weights, user, base_set, events, result, alpha


def test_the_model_holds_the_interpolated_weights_of_the_alpha_reported_and_every_alpha_is_reported() -> None:
    base, model, tuned, user, base_set, events, result, alpha = _run(base_before=-1.0)  # every alpha keeps the base
    assert [e["alpha"] for e in events] == [1.0, 0.5, 0.25]
    assert alpha == max(events, key=lambda e: e["val_user"])["alpha"]  # all keep the base: best on the user's frames
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, base.state_dict()[k] + alpha * (tuned[k] - base.state_dict()[k]), atol=1e-6), k
    again = _evaluate(model, user, "cpu", lambda: False)
    assert abs(again["dice"] - result["val_user"]["dice"]) < 1e-9  # the evaluation is of the weights kept


def test_an_alpha_that_loses_the_base_set_is_never_chosen_over_one_that_keeps_it() -> None:
    alphas = (1.0, 0.5, 0.0)
    *_, free, _, _ = _run(base_before=-1.0, alphas=alphas)  # what every alpha scores (deterministic)
    by_alpha = {e["alpha"]: e for e in free}
    best_user = max(free, key=lambda e: e["val_user"])["alpha"]
    # a base Dice before training that the best-on-user alpha falls short of by more than the gate's 0.01
    base_before = by_alpha[best_user]["val_base"] + 0.02
    keeping = [e for e in free if e["val_base"] >= base_before - 0.01]
    assert keeping and best_user not in {e["alpha"] for e in keeping}
    *_, result, alpha = _run(base_before=base_before, alphas=alphas)
    assert alpha == max(keeping, key=lambda e: e["val_user"])["alpha"] != best_user
    assert result["val_base"]["dice"] >= base_before - 0.01
