import json
import subprocess
import sys

import numpy as np
import pytest

from tnseg_desktop.model.lite_predictor import LitePredictor
from tnseg_desktop.training.data import load_folder
from tnseg_desktop.training.evaluate import evaluate_probs
from tnseg_desktop.training.trainer import LiteTrainer, TrainConfig, TrainingStopped


@pytest.fixture(scope="module")
def eight_frames(shared_data):
    samples = load_folder(shared_data / "ddti" / "train")[:8]
    assert len(samples) == 8
    return samples


def _cfg(**kw):
    base = dict(size=64, batch=4, lr=3e-3, steps=60, warmup=5, val_every=1000, p_auto=1.0, aug_strength=0.0, base_channels=8, head_hidden=16)
    base.update(kw)
    return TrainConfig(**base)


def test_short_training_lowers_loss_and_raises_train_dice(eight_frames):
    losses = []
    trainer = LiteTrainer(_cfg(), eight_frames, progress=lambda r: losses.append(r["loss"]) if r.get("event") == "step" else None)
    before = evaluate_probs(LitePredictor(trainer.model.eval()).auto_probs, eight_frames)["dice_mean"]
    trainer.model.train()
    trainer.run()
    after = evaluate_probs(LitePredictor(trainer.model).auto_probs, eight_frames)["dice_mean"]
    assert losses[-1] < 0.8 * losses[0]
    assert after > before


def test_interactive_samples_run_and_stop_flag_raises(eight_frames):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 3

    trainer = LiteTrainer(_cfg(p_auto=0.0, max_click_rounds=2, aug_strength=1.0, steps=100), eight_frames, should_stop=stop)
    with pytest.raises(TrainingStopped) as info:
        trainer.run()
    ckpt = info.value.checkpoint
    assert ckpt["step"] == trainer.step and 0 < trainer.step < 100


def test_best_validation_weights_are_kept(eight_frames):
    trainer = LiteTrainer(_cfg(steps=20, val_every=10), eight_frames[:6], val=eight_frames[6:])
    result = trainer.run()
    assert result["best_val_dice"] is not None
    final = evaluate_probs(LitePredictor(trainer.model).auto_probs, eight_frames[6:])["dice_mean"]
    assert final == pytest.approx(result["best_val_dice"], abs=1e-6)


def test_self_prior_starts_refinement_from_the_models_own_automatic_mask(eight_frames):
    import torch

    from tnseg_desktop.training.trainer import _autocast

    trainer = LiteTrainer(_cfg(p_auto=0.0, p_self_prior=1.0, max_click_rounds=0), eight_frames)
    x, _, interactive, masks = trainer._batch()
    assert interactive.all()
    extra = trainer._simulate_interaction(x, masks, interactive)
    with torch.no_grad(), _autocast(trainer.device):
        own = (trainer.model(x, torch.zeros(len(x), 3, 64, 64)).float()[:, 0] > 0).numpy()
    assert np.array_equal(extra[:, 0].numpy() > 0.5, own)
    # without it the starting masks are simulated from the truth (perturbed or empty), not the model's output
    trainer.cfg.p_self_prior = 0.0
    extra = trainer._simulate_interaction(x, masks, interactive)
    assert not np.array_equal(extra[:, 0].numpy() > 0.5, own)


def test_hard_weighting_draws_the_frames_the_starting_model_gets_wrong_more_often(eight_frames):
    from tnseg_desktop.model.lite_weights import load_lite
    from tnseg_desktop.paths import shipped_models_dir

    shipped = load_lite(shipped_models_dir() / "tnseg-lite.safetensors", "cpu")
    measured = evaluate_probs(LitePredictor(shipped).auto_probs, eight_frames)
    dices = np.array([r["dice"] for r in measured["per_image"]])
    assert dices.max() - dices.min() > 0.2  # real frames the shipped model gets right and wrong

    plain = LiteTrainer(TrainConfig(size=160, batch=2, steps=1), eight_frames, model=shipped)
    assert np.allclose(plain.p, 1 / len(eight_frames))
    hard = LiteTrainer(TrainConfig(size=160, batch=2, steps=1, hard_weighting=2.0), eight_frames, model=shipped)
    assert np.allclose(hard.starting_dice(), dices)
    assert int(np.argmax(hard.p)) == int(np.argmin(dices)) and int(np.argmin(hard.p)) == int(np.argmax(dices))
    assert hard.p.max() / hard.p.min() == pytest.approx((1 + 2 * (1 - dices.min())) / (1 + 2 * (1 - dices.max())))


def test_train_and_eval_cli_end_to_end(tmp_path, shared_data):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    src = shared_data / "ddti" / "train"
    ids = sorted(p.stem for p in (src / "images").glob("*.png"))[:6]
    for i in ids:
        (root / "images" / f"{i}.png").write_bytes((src / "images" / f"{i}.png").read_bytes())
        (root / "masks" / f"{i}.png").write_bytes((src / "masks" / f"{i}.png").read_bytes())
    out = tmp_path / "m.safetensors"
    snaps = tmp_path / "snaps"
    r = subprocess.run([sys.executable, "-m", "tnseg_desktop", "train", "--data", str(root), "--val", str(root), "--out", str(out), "--steps", "6", "--size", "64", "--batch", "2", "--val-every", "3",
                        "--object-crop", "0.5", "--p-auto", "0.5", "--click-rounds", "3", "--hard-weighting", "1.5", "--snapshots", str(snaps)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert out.is_file()
    # every validated state is kept (steps 0, 3, 6) and loads as a model
    assert sorted(p.name for p in snaps.glob("*.safetensors")) == ["step000000.safetensors", "step000003.safetensors", "step000006.safetensors"]
    from tnseg_desktop.model.lite_weights import load_lite, read_metadata

    assert load_lite(snaps / "step000003.safetensors", "cpu").input_size == 64
    config = read_metadata(out)["info"]["config"]
    assert (config["p_object_crop"], config["max_click_rounds"], config["hard_weighting"]) == (0.5, 3, 1.5)
    js = tmp_path / "eval.json"
    r = subprocess.run([sys.executable, "-m", "tnseg_desktop", "eval", "--data", str(root), "--model", str(out), "--json", str(js)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(js.read_text())
    assert res["n"] == 6 and len(res["per_image"]) == 6
    assert res["dice_mean"] == pytest.approx(np.mean([p["dice"] for p in res["per_image"]]))


def test_eval_on_a_folder_without_images_gives_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tnseg_desktop", "eval", "--data", str(tmp_path), "--json", str(tmp_path / "o.json")], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and "images/" in r.stderr


def test_ema_validates_and_keeps_the_moving_average_of_the_weights(eight_frames):
    import torch

    trainer = LiteTrainer(_cfg(steps=3, ema=0.5, val_every=1000), eight_frames, val=eight_frames[:2])
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    expected = {k: v.clone() for k, v in start.items()}
    real_update = trainer._update_ema

    def checked_update():
        # after each optimizer step the average moves halfway towards the current weights
        for k, v in trainer.model.state_dict().items():
            if v.dtype.is_floating_point:
                expected[k] = 0.5 * expected[k] + 0.5 * v.detach()
        real_update()

    trainer._update_ema = checked_update
    trainer.run()
    # run() ends on the best validated weights: the average's at step 0 or at step 3, never the raw weights
    final = trainer.model.state_dict()
    name = "fgb.enc_blocks.0.weight"
    at_end = trainer.ema_model.state_dict()[name]
    assert torch.allclose(at_end, expected[name], atol=1e-6)
    assert torch.equal(final[name], at_end) or torch.equal(final[name], start[name])
    assert not torch.equal(at_end, start[name])
