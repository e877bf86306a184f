import numpy as np
import pytest

from tnseg_desktop.prompts import Click, click_maps
from tnseg_desktop.training.clicks import next_click
from tnseg_desktop.training.evaluate import evaluate_probs
from tnseg_desktop.training.data import Sample
from tnseg_desktop.training.metrics import dice, dice_fg_bg_mean, iou


def test_dice_iou_hand_made():
    gt = np.zeros((10, 10), bool)
    gt[2:6, 2:6] = True  # 16 px
    pred = np.zeros((10, 10), bool)
    pred[2:6, 4:8] = True  # 16 px, 8 overlap
    assert dice(pred, gt) == pytest.approx(2 * 8 / 32)
    assert iou(pred, gt) == pytest.approx(8 / 24)


def test_empty_on_empty_counts_one_and_empty_on_object_zero():
    z = np.zeros((5, 5), bool)
    o = z.copy()
    o[1, 1] = True
    assert dice(z, z) == 1.0 and iou(z, z) == 1.0
    assert dice(z, o) == 0.0 and iou(o, z) == 0.0


def test_fg_bg_mean_is_extra_convention():
    gt = np.zeros((10, 10), bool)
    gt[:5] = True
    pred = np.zeros((10, 10), bool)
    assert dice(pred, gt) == 0.0
    assert dice_fg_bg_mean(pred, gt) == pytest.approx(0.5 * (0 + 2 * 50 / 150))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        dice(np.zeros((3, 3)), np.zeros((4, 4)))


def test_evaluate_means_over_images():
    gt1 = np.zeros((8, 8), bool)
    gt1[:4] = True
    gt2 = np.zeros((8, 8), bool)
    gt2[:, :2] = True
    samples = [Sample("a", np.zeros((8, 8), np.uint8), gt1), Sample("b", np.zeros((8, 8), np.uint8), gt2)]
    preds = {0: gt1.astype(np.float32), 1: np.zeros((8, 8), np.float32)}
    calls = iter(range(2))

    def prob_fn(frames):
        return [preds[next(calls)] for _ in frames]

    out = evaluate_probs(prob_fn, samples, batch_size=1)
    assert out["n"] == 2
    assert out["dice_mean"] == pytest.approx(0.5)
    assert [r["id"] for r in out["per_image"]] == ["a", "b"]


def test_next_click_goes_deepest_into_largest_error():
    gt = np.zeros((50, 50), bool)
    gt[10:31, 10:31] = True  # 21x21 missed square, centre (20, 20)
    pred = np.zeros((50, 50), bool)
    pred[40:44, 40:44] = True  # small false positive
    c = next_click(pred, gt)
    assert c == Click(20, 20, True)
    # now the false region is the largest error
    pred2 = gt.copy()
    pred2[0:9, 0:50] = True
    c2 = next_click(pred2, gt)
    assert c2 is not None and not c2.positive and 0 <= c2.row < 9


def test_next_click_none_when_perfect():
    gt = np.zeros((20, 20), bool)
    gt[5:9, 5:9] = True
    assert next_click(gt.copy(), gt) is None


def test_region_touching_border_treats_border_as_edge():
    gt = np.zeros((20, 40), bool)
    gt[:, :10] = True  # touches the left, top and bottom borders
    c = next_click(np.zeros_like(gt), gt)
    assert c.positive and 3 <= c.col <= 6


def test_click_maps_positions_and_scaling():
    maps = click_maps([Click(10, 20, True), Click(30, 5, False)], (40, 40))
    assert maps[0, 10, 20] == 1 and maps[1, 30, 5] == 1
    assert maps[0, 30, 5] == 0 and maps[1, 10, 20] == 0
    # a click at source (100, 200) in a 2x downscaled map lands at (50, 100)
    m2 = click_maps([Click(100, 200, True)], (120, 160), scale=(0.5, 0.5))
    assert m2[0, 50, 100] == 1
