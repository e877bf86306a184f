from __future__ import annotations

import numpy as np
import pytest

from tnseg_desktop.io.types import CineMeta


def make_meta(frames: int = 6, rows: int = 40, cols: int = 50, **kw) -> CineMeta:
    base = dict(source_path="/data/cine.dcm", frames=frames, rows=rows, cols=cols, channels=1, fps=25.0,
                fps_source="default", sop_instance_uid="1.2.826.0.1.3680043.8.498.1", study_instance_uid="1.2.3",
                series_instance_uid="1.2.3.4", patient_name="Doe^Jane", patient_id="PID-4711")
    base.update(kw)
    return CineMeta(**base)


def blob(rows: int, cols: int, y: int, x: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:rows, :cols]
    return (yy - y) ** 2 + (xx - x) ** 2 <= r * r


@pytest.fixture
def meta() -> CineMeta:
    return make_meta()
