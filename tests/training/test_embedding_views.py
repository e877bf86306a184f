"""Cached augmented views: keyed by weights, precision, pixels and view parameters; resumable and cancellable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tnseg_desktop.training.embedding_views import ViewSpec, apply_view, build_views, load_view, view_specs


class CountingEncoder(nn.Module):
    """A small real conv encoder with LiteMedSAM's output shape; counts its passes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 256, 4, stride=4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.conv(x)


def items(n: int = 3):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = rng.integers(0, 255, (90 + i, 130), dtype=np.uint8)
        m = np.zeros(img.shape, bool)
        m[30:60, 40:90] = True
        out.append((f"f{i}", img, m))
    return out


def test_views_are_made_once_and_resumed(tmp_path):
    enc = CountingEncoder()
    paths = build_views(items(), 3, tmp_path, enc, "a" * 64, "fp32")
    assert enc.calls == 9 and all(len(p) == 3 for p in paths)
    again = build_views(items(), 3, tmp_path, enc, "a" * 64, "fp32")
    assert enc.calls == 9 and again == paths
    v = load_view(paths[0][0])
    assert v.embedding.shape == (256, 64, 64) and v.embedding.dtype == np.float16
    assert v.image.shape == (256, 256) and v.mask.shape == (256, 256) and v.mask.any()
    assert v.hw == (round(90 * 256 / 130), 256)


def test_other_weights_precision_or_pixels_make_new_views(tmp_path):
    enc = CountingEncoder()
    build_views(items(1), 2, tmp_path, enc, "a" * 64, "fp32")
    build_views(items(1), 2, tmp_path, enc, "b" * 64, "fp32")
    build_views(items(1), 2, tmp_path, enc, "a" * 64, "bf16")
    sid, img, m = items(1)[0]
    img = img.copy()
    img[0, 0] ^= 1
    build_views([(sid, img, m)], 2, tmp_path, enc, "a" * 64, "fp32")
    assert enc.calls == 8


def test_cancel_stops_between_views_and_keeps_what_was_made(tmp_path):
    enc = CountingEncoder()
    stop_after = {"n": 4}
    out = build_views(items(3), 2, tmp_path, enc, "a" * 64, "fp32", cancelled=lambda: enc.calls >= stop_after["n"])
    assert enc.calls == 4 and len(out) == 2
    build_views(items(3), 2, tmp_path, enc, "a" * 64, "fp32")
    assert enc.calls == 6


def test_view_specs_are_seeded_and_the_geometry_moves_image_and_mask_together():
    a, b = view_specs("x", 5), view_specs("x", 5)
    assert a == b and a[0] == ViewSpec() and a[1] == ViewSpec(flip=True) and len(set(a)) == 5
    img = np.zeros((100, 160), np.uint8)
    img[20:50, 30:70] = 200
    mask = img > 0
    for spec in a:
        vi, vm = apply_view(img, mask, spec)
        assert vi.shape == img.shape and vm.shape == mask.shape
        if spec.seed < 0:  # geometry only: the bright square and its mask coincide
            assert np.array_equal(vi > 100, vm)


class DeviceCheckingEncoder(CountingEncoder):
    """Records, for each pass, whether its input was on its weights' device and whether bf16 autocast was on there."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = self.conv.weight.device
        self.seen.append((x.device == device, torch.is_autocast_enabled(device.type)))
        return super().forward(x)


def _old_encode(encoder: nn.Module, x: np.ndarray, precision: str) -> np.ndarray:
    """The CPU-only encoder pass the cached view files were made with before the device came from the module."""
    t = torch.from_numpy(x)[None]
    with torch.inference_mode():
        if precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return encoder(t)[0].float().numpy()
        return encoder(t)[0].float().numpy()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_encoder_pass_runs_on_the_encoders_device_and_cached_views_stay_valid(tmp_path, precision):
    from tnseg_desktop.model import litemedsam as lms
    from tnseg_desktop.training.embedding_views import encode_inputs, make_view, module_device, view_file

    torch.manual_seed(0)
    enc = DeviceCheckingEncoder()
    assert module_device(enc) == enc.conv.weight.device == torch.device("cpu")
    sid, img, m = items(1)[0]
    spec = view_specs(sid, 3)[2]
    view = make_view(enc, img, m, spec, precision)
    assert enc.seen == [(True, precision == "bf16")]
    # the same arrays as before, under the same file name: views cached before stay valid
    x, hw = lms.preprocess(apply_view(img, m, spec)[0])
    assert np.array_equal(encode_inputs(enc, x, precision), _old_encode(enc, x, precision))
    assert np.array_equal(view.embedding, _old_encode(enc, x, precision).astype(np.float16)) and view.hw == hw
    name = view_file(tmp_path, "a" * 64, precision, img, m, spec).relative_to(tmp_path).as_posix()
    assert name == {"fp32": "aaaaaaaaaaaaaaaa/d629bb6c7a6f46b63c79818ade70a04e08594bc8.npz", "bf16": "aaaaaaaaaaaaaaaa/08f151d90fc1160f32fdc412b86e13b8194e408b.npz"}[precision]
