"""The decoder fine-tuning runs on the model's own device: every tensor of a pass is moved to where its weights are."""

from __future__ import annotations

import numpy as np
import torch

from tnseg_desktop.model import litemedsam as lms
from tnseg_desktop.training.embedding_views import module_device
from tnseg_desktop.training.litemedsam_finetune import FinetuneConfig, ViewSet, finetune, validate


def _views(n: int = 4) -> ViewSet:
    rng = np.random.default_rng(0)
    emb = torch.from_numpy(rng.standard_normal((n, 256, 64, 64)).astype(np.float16))
    masks = np.zeros((n, 256, 256), bool)
    for i in range(n):
        masks[i, 60 + 5 * i:140, 50:150 + 5 * i] = True
    return ViewSet(emb, masks, [(200, 256)] * n)


def test_decoder_passes_get_their_inputs_on_the_models_device_under_its_autocast():
    torch.manual_seed(0)
    model = lms.build_litemedsam().eval()
    device = module_device(model.mask_decoder)
    seen: list[tuple[bool, bool]] = []

    def check(module, args) -> None:
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        seen.append((all(t.device == device for t in tensors), torch.is_autocast_enabled(device.type)))

    hook = model.mask_decoder.transformer.register_forward_pre_hook(check)
    try:
        result = validate(model, _views(), clicks=2, bf16=True)
        finetune(model, _views(), None, FinetuneConfig(steps=2, batch=2, max_rounds=1, bf16=True))
        validate(model, _views(), clicks=1, bf16=False)
    finally:
        hook.remove()
    assert 0.0 <= result["box_dice"] <= 1.0
    assert len(seen) >= 3 + 2 + 2
    assert all(on_device for on_device, _ in seen)
    assert all(autocast for _, autocast in seen[:-2]) and not any(autocast for _, autocast in seen[-2:])
