"""Running tnseg-lite on frames: the automatic mask and click refinement on a crop.

Frames of any size are resized to the network's square input; probabilities
come back at the frame's own resolution.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

from tnseg_desktop.model.frame_batches import probs_at_frame_size, square_input
from tnseg_desktop.model.lite import TnsegLite
from tnseg_desktop.prompts import Click, click_maps, to_gray


def _autocast(device: torch.device):
    if device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return torch.autocast(device.type, dtype=torch.float16)


class LitePredictor:
    def __init__(self, model: TnsegLite, device: torch.device | str = "cpu", tta: bool = False, bf16: bool = True) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.size = int(model.input_size)
        self.tta = tta
        self.bf16 = bf16

    @torch.no_grad()
    def _forward(self, images01: np.ndarray, extras: np.ndarray | None) -> np.ndarray:
        """images01: (B, S, S) float32; extras: (B, 3, S, S) or None -> probabilities (B, S, S)."""
        x = torch.from_numpy(images01).to(self.device)[:, None]
        e = None if extras is None else torch.from_numpy(extras).to(self.device)
        ctx = _autocast(self.device) if self.bf16 else torch.autocast(self.device.type, enabled=False)
        with ctx:
            logits = self.model(x, e).float()
            if self.tta:
                flipped = self.model(x.flip(-1), None if e is None else e.flip(-1)).float().flip(-1)
                logits = 0.5 * (logits + flipped)
        return torch.sigmoid(logits)[:, 0].cpu().numpy()

    def auto_probs(self, frames: Sequence[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
        """Automatic nodule probability per frame, each at its frame's resolution."""
        return probs_at_frame_size(frames, self.size, lambda x: self._forward(x, None), batch_size)

    def auto_prob(self, frame: np.ndarray) -> np.ndarray:
        return self.auto_probs([frame])[0]

    def refine_prob(
        self,
        frame: np.ndarray,
        prior: np.ndarray | None,
        clicks: Sequence[Click],
        crop: tuple[int, int, int, int] | None = None,
    ) -> np.ndarray:
        """Probability map at frame resolution after refining ``prior`` with ``clicks``.

        ``crop`` = (row0, col0, row1, col1) restricts the network to that window
        (zoom-in); outside it the prior is kept.
        """
        gray = to_gray(frame)
        h, w = gray.shape
        r0, c0, r1, c1 = crop if crop is not None else (0, 0, h, w)
        r0, c0, r1, c1 = max(0, r0), max(0, c0), min(h, r1), min(w, c1)
        window = gray[r0:r1, c0:c1]
        s = self.size
        img = square_input(window, s)
        extra = np.zeros((3, s, s), dtype=np.float32)
        if prior is not None:
            extra[0] = cv2.resize(prior[r0:r1, c0:c1].astype(np.uint8), (s, s), interpolation=cv2.INTER_NEAREST)
        scale = (s / max(1, r1 - r0), s / max(1, c1 - c0))
        extra[1:] = click_maps(list(clicks), (s, s), scale=scale, offset=(r0 - 0.5 + 0.5 / scale[0], c0 - 0.5 + 0.5 / scale[1]))
        prob = self._forward(img[None], extra[None])[0]
        out = np.zeros((h, w), dtype=np.float32) if prior is None else prior.astype(np.float32)
        out = out.copy()
        out[r0:r1, c0:c1] = cv2.resize(prob, (c1 - c0, r1 - r0), interpolation=cv2.INTER_LINEAR)
        return out
