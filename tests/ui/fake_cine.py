"""An in-memory cine with known pixels, for viewer tests that need exact control."""

from __future__ import annotations

import threading
import time

import numpy as np

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.io.types import CineMeta


def frame_pattern(index: int, rows: int = 48, cols: int = 64) -> np.ndarray:
    """Frame ``index``: a gradient whose top-left pixel is the index (mod 256)."""
    yy, xx = np.mgrid[0:rows, 0:cols]
    return ((yy + xx + index) % 256).astype(np.uint8)


class NumpyCine:
    def __init__(self, path: str, n_frames: int = 20, fps: float = 25.0, decode_delay_s: float = 0.0,
                 fail_frames: frozenset[int] = frozenset()) -> None:
        self.meta = CineMeta(source_path=path, frames=n_frames, rows=48, cols=64, channels=1, fps=fps,
                             fps_source="FrameTime", modality="US", manufacturer="Test Scanner",
                             study_date="20240131", patient_name="DOE^JANE", patient_id="P123",
                             codec="test pattern")
        self.decode_delay_s = decode_delay_s
        self.fail_frames = fail_frames
        self.decoded: list[int] = []
        self.closed = threading.Event()

    def __len__(self) -> int:
        return self.meta.frames

    def frame(self, index: int) -> np.ndarray:
        if self.decode_delay_s:
            time.sleep(self.decode_delay_s)
        if index in self.fail_frames:
            raise UserFacingError(f"frame {index + 1} is damaged.")
        self.decoded.append(index)
        return frame_pattern(index)

    def close(self) -> None:
        self.closed.set()


class FakeOpener:
    """Opens 'bad*' paths with an error, anything else as a :class:`NumpyCine`."""

    def __init__(self, **cine_kwargs) -> None:
        self.cine_kwargs = cine_kwargs
        self.opened: list[NumpyCine] = []

    def __call__(self, path: str) -> NumpyCine:
        if "bad" in path:
            raise UserFacingError("this file is not a DICOM file or an image.", path=path)
        cine = NumpyCine(path, **self.cine_kwargs)
        self.opened.append(cine)
        return cine
