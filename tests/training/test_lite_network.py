import numpy as np
import torch

from tnseg_desktop.model.lite import TnsegLite
from tnseg_desktop.model.lite_predictor import LitePredictor
from tnseg_desktop.model.lite_weights import load_lite, save_lite
from tnseg_desktop.model.unet import ResidualUNet
from tnseg_desktop.prompts import Click


def test_unet_shapes_and_reference_channels():
    net = ResidualUNet(in_channels=3, base_channels=32)
    assert net.out_channels == 32
    assert net.size_multiple == 32
    # the reference layout: 1 stem conv + 6 levels x 2 blocks + 5 downsamplings
    assert len(net.enc_blocks) == 1 + 12 + 5
    assert len(net.dec_blocks) == 18
    assert net.enc_blocks[1][0].in_layers[0].num_groups == 32
    y = net(torch.randn(1, 3, 64, 64))
    assert y.shape == (1, 32, 64, 64)


def test_lite_forward_and_gradients():
    m = TnsegLite(base_channels=8, head_hidden=16, input_size=64)
    x = torch.rand(2, 1, 64, 64)
    extra = torch.zeros(2, 3, 64, 64)
    out = m(x, extra)
    assert out.shape == (2, 1, 64, 64)
    out.mean().backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_extra_channels_change_the_output():
    torch.manual_seed(0)
    m = TnsegLite(base_channels=8, head_hidden=16, input_size=64).eval()
    x = torch.rand(1, 1, 64, 64)
    e = torch.zeros(1, 3, 64, 64)
    e[0, 1, 30:34, 30:34] = 1
    with torch.no_grad():
        a, b = m(x, None), m(x, e)
    assert not torch.allclose(a, b)


def test_weights_round_trip_and_predictor_sizes(tmp_path):
    m = TnsegLite(base_channels=8, head_hidden=16, input_size=64)
    path = save_lite(m, tmp_path / "w.safetensors", {"note": "test"})
    m2 = load_lite(path)
    assert m2.config == m.config and m2.info == {"note": "test"}
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    pred = LitePredictor(m2)
    frame = (np.random.default_rng(0).random((90, 130)) * 255).astype(np.uint8)
    p = pred.auto_prob(frame)
    assert p.shape == (90, 130) and p.dtype == np.float32 and 0 <= p.min() <= p.max() <= 1
    prior = np.zeros((90, 130), bool)
    prior[5:10, 5:10] = True
    r = pred.refine_prob(frame, prior, [Click(50, 60, True)], crop=(30, 40, 80, 100))
    assert r.shape == (90, 130)
    # outside the crop the prior is kept exactly
    assert np.array_equal(r[:30] >= 0.5, prior[:30])


def test_wrong_architecture_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    from tnseg_desktop.errors import UserFacingError

    p = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(p), metadata={"arch": "something-else"})
    try:
        load_lite(p)
    except UserFacingError as exc:
        assert "not tnseg-lite" in str(exc)
    else:
        raise AssertionError("expected a refusal")
