"""NoC counting on hand-made cases whose answer is known by construction, and the CLI command."""

from __future__ import annotations

import argparse
import json
import math

import cv2
import numpy as np
import pytest

from tnseg_desktop.engine import mask_ops
from tnseg_desktop.training.interactive_eval import clicks_to_reach, evaluate_interactive, simulate_clicks
from tnseg_desktop.training.data import Sample

try:
    from .interactive_helpers import OracleRefiner, StuckRefiner, ddti_samples, random_lite
except ImportError:
    from interactive_helpers import OracleRefiner, StuckRefiner, ddti_samples, random_lite


@pytest.fixture(scope="module")
def case(shared_data):
    """A real nodule plus three false-positive blobs of 50%, 10% and 6% of its area, far from it and each other."""
    s = ddti_samples(shared_data, "val", 6)[0]
    gt = mask_ops.largest_component(s.mask)
    area = gt.sum()
    start = gt.copy()
    for frac in (0.5, 0.10, 0.06):
        radius = math.sqrt(frac * area / math.pi)
        taken = cv2.dilate(start.astype(np.uint8), np.ones((9, 9), np.uint8))
        free = cv2.distanceTransform(np.pad(1 - taken, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
        r, c = np.unravel_index(int(np.argmax(free)), free.shape)
        assert free[r, c] > radius + 2
        start = mask_ops.paint(start, [(r, c)], int(round(radius)))
    return s, gt, start


def test_oracle_fixes_one_blob_per_click_so_noc_is_known(case):
    s, gt, start = case
    n, labels, stats, _ = cv2.connectedComponentsWithStats((start & ~gt).astype(np.uint8), connectivity=8)
    areas = sorted(stats[1:, cv2.CC_STAT_AREA], reverse=True)
    assert len(areas) == 3
    g = gt.sum()
    expected = [g / (g + sum(areas[k:])) for k in range(4)]  # IoU after k clicks: the k largest blobs are gone
    assert expected[1] >= 0.85 > expected[0] and expected[2] >= 0.90 > expected[1]
    trace = simulate_clicks(OracleRefiner(gt), s.image, gt, start, max_clicks=6)
    assert trace.ious[:4] == pytest.approx(expected)
    assert trace.ious[4:] == [1.0, 1.0, 1.0] and len(trace.dices) == 7
    assert [c.positive for c in trace.clicks] == [False, False, False]
    assert trace.noc(0.85, 6) == 1 and trace.noc(0.90, 6) == 2


def test_summary_from_empty_and_from_a_start_mask(case):
    s, gt, start = case
    samples = [Sample("blobs", s.image, gt)]
    res = evaluate_interactive(OracleRefiner(gt), samples, start="auto", auto_probs=lambda frames: [start.astype(np.float32)], max_clicks=5)
    assert res["n"] == 1 and res["noc85"] == 1 and res["noc90"] == 2 and res["nof90"] == 0
    assert len(res["dice_at_clicks"]) == 6 and res["dice_at_clicks"][-1] == 1.0
    assert res["dice_at_clicks"][0] == pytest.approx(2 * gt.sum() / (gt.sum() + start.sum()))
    assert res["per_image"][0]["noc90"] == 2 and res["per_image"][0]["id"] == "blobs"
    # from empty: the first (positive) click fills the whole single-component nodule
    res = evaluate_interactive(OracleRefiner(gt), samples, start="empty", max_clicks=5)
    assert res["noc85"] == 1 and res["noc90"] == 1 and res["dice_at_clicks"][:2] == [0.0, 1.0]
    assert res["per_image"][0]["clicks"][0]["positive"] is True


def test_a_refiner_that_never_improves_counts_the_maximum(case):
    s, gt, start = case
    stuck = StuckRefiner(gt)
    res = evaluate_interactive(stuck, [Sample("x", s.image, gt)], start="empty", max_clicks=7)
    assert res["noc85"] == 7 and res["noc90"] == 7 and res["nof85"] == 1
    assert res["dice_at_clicks"] == [0.0] * 8 and stuck.calls == 7


def test_a_start_already_good_enough_needs_no_click_and_exact_masks_stop_refining(case):
    s, gt, _ = case
    oracle = OracleRefiner(gt)
    trace = simulate_clicks(oracle, s.image, gt, gt, max_clicks=4)
    assert trace.noc(0.9, 4) == 0 and oracle.calls == 0 and trace.ious == [1.0] * 5


def test_clicks_to_reach():
    assert clicks_to_reach([0.1, 0.5, 0.86, 0.95], 0.85, 20) == 2
    assert clicks_to_reach([0.1, 0.5, 0.8], 0.85, 2) == 2
    assert clicks_to_reach([0.9], 0.85, 3) == 0
    assert clicks_to_reach([0.1, 0.2, 0.3, 0.95], 0.9, 2) == 2  # beyond the cap counts as the cap


def test_cmd_eval_interactive_writes_the_json(tmp_path, shared_data, capsys):
    from tnseg_desktop.training.interactive_commands import cmd_eval_interactive
    from tnseg_desktop.model.lite_weights import save_lite

    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for s in ddti_samples(shared_data, "val", 6)[:2]:
        cv2.imwrite(str(data / "images" / f"{s.id}.png"), s.image)
        cv2.imwrite(str(data / "masks" / f"{s.id}.png"), s.mask.astype(np.uint8) * 255)
    weights = save_lite(random_lite(1, size=64), tmp_path / "tiny.safetensors")
    out = tmp_path / "out" / "ei.json"
    args = argparse.Namespace(data=str(data), model=str(weights), refiner="tnseg-lite", start="auto", max_clicks=3, json_out=str(out), device="cpu")
    assert cmd_eval_interactive(args) == 0
    res = json.loads(out.read_text())
    assert res["n"] == 2 and len(res["dice_at_clicks"]) == 4 and len(res["per_image"]) == 2
    assert 0 <= res["noc85"] <= 3 and 0 <= res["noc90"] <= 3
    assert "NoC@90" in capsys.readouterr().out
