"""tnseg-med's SAM-decoder coarse branch on the real LiteMedSAM weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.model.tnseg_med import TnsegMed, check_config
from tnseg_desktop.model.tnseg_med_predictor import TnsegMedWeightsError, load_med_net, read_med_metadata
from tnseg_desktop.training.tnseg_med_train import MedTrainConfig, param_groups, save_med


@pytest.fixture(scope="module")
def stock_and_embedding():
    torch.set_num_threads(1)
    model, sha = lms.load_litemedsam()
    rng = np.random.default_rng(3)
    frame = (rng.random((200, 260)) * 60).astype(np.uint8)
    frame[60:140, 90:170] += 120  # a bright blob for the decoder to find
    x, _ = lms.preprocess(frame)
    with torch.inference_mode():
        emb = model.image_encoder(torch.from_numpy(x)[None])
    return model, sha, emb.clone(), torch.from_numpy(x[:1])[None].clone()


def test_at_the_start_the_branch_is_the_decoder_prompted_with_a_whole_image_box(stock_and_embedding):
    model, _, emb, _ = stock_and_embedding
    net = TnsegMed({"coarse": "sam"})
    net.sam.init_from(model)
    with torch.inference_mode():
        _, ours = net.sam(emb, torch.zeros(1, net.config["cond_dim"]))  # a zero condition: the box tokens alone
        box = torch.tensor([[0.0, 0.0, 255.0, 255.0]])
        sparse, dense = model.prompt_encoder(points=None, boxes=box, masks=None)
        theirs, _ = model.mask_decoder(image_embeddings=emb, image_pe=model.prompt_encoder.get_dense_pe(), sparse_prompt_embeddings=sparse,
                                       dense_prompt_embeddings=dense, multimask_output=False)
    assert ours.shape == theirs.shape == (1, 1, 256, 256)
    assert torch.allclose(ours, theirs, atol=1e-3), float((ours - theirs).abs().max())


def test_a_training_step_moves_the_decoder_and_the_new_parts_at_their_own_rates(stock_and_embedding):
    model, _, emb, img = stock_and_embedding
    net = TnsegMed({"coarse": "sam"})
    net.sam.init_from(model)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    groups = param_groups(net, MedTrainConfig(lr=1e-3, lr_pretrained=1e-5))
    assert [g["lr"] for g in groups] == [1e-3, 1e-5]
    opt = torch.optim.AdamW(groups)
    target = torch.zeros(1, 1, 256, 256)
    target[..., 59:138, 89:167] = 1
    net(emb, img).sigmoid().sub(target).pow(2).mean().backward()
    opt.step()
    moved = {n: float((p.detach() - before[n]).abs().max()) for n, p in net.named_parameters()}
    assert moved["sam.decoder.output_upscaling.0.weight"] > 0
    assert moved["sam.prompt.bias"] > 0 and max(v for n, v in moved.items() if n.startswith("fgb.")) > 0
    # Adam's first step is about lr in size: the pretrained decoder moves a hundred times less than the new parts
    assert moved["sam.decoder.output_upscaling.0.weight"] < 1e-4 < moved["sam.prompt.bias"]
    assert not any(n.startswith("image_encoder") for n in moved)


def test_saved_weights_load_into_the_same_network(tmp_path, stock_and_embedding):
    model, sha, emb, img = stock_and_embedding
    net = TnsegMed({"coarse": "sam"}).eval()
    net.sam.init_from(model)
    path = tmp_path / "med.safetensors"
    save_med(net, path, sha, {"note": "test"})
    assert read_med_metadata(path)["config"]["coarse"] == "sam"
    loaded, _ = load_med_net(path)
    with torch.inference_mode():
        assert torch.equal(net(emb, img), loaded(emb, img))
        assert not torch.equal(net(emb, img), TnsegMed({"coarse": "sam"}).eval()(emb, img))  # the file's weights, not a fresh net's


def test_an_unknown_coarse_branch_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="coarse = 'vit'"):
        check_config({"coarse": "vit"})
    net = TnsegMed({})
    path = tmp_path / "bad.safetensors"
    save_med(net, path, "0" * 64, {})
    from safetensors.torch import load_file, save_file
    import json

    save_file(load_file(str(path)), str(path), metadata={"arch": "tnseg-med", "config": json.dumps({**net.config, "coarse": "vit"})})
    with pytest.raises(TnsegMedWeightsError, match="coarse"):
        read_med_metadata(path)
