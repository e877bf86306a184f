from __future__ import annotations

import numpy as np

from tnseg_desktop.io.content_hash import content_hash
from tnseg_desktop.io.types import CineMeta


class _Loop:
    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames
        self.asked: list[int] = []

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, index: int) -> np.ndarray:
        self.asked.append(index)
        return self.frames[index]


def _meta(n: int, uid: str = "1.2.3") -> CineMeta:
    return CineMeta(source_path="/x.dcm", frames=n, rows=8, cols=9, channels=1, fps=25.0, fps_source="default",
                    sop_instance_uid=uid)


def _frames(n: int) -> list[np.ndarray]:
    return [np.full((8, 9), i, np.uint8) for i in range(n)]


def test_same_pixels_same_hash_and_only_three_frames_read() -> None:
    a, b = _Loop(_frames(7)), _Loop(_frames(7))
    assert content_hash(a, _meta(7)) == content_hash(b, _meta(7))
    assert sorted(a.asked) == [0, 3, 6]


def test_first_middle_last_frame_and_uid_change_the_hash() -> None:
    base = content_hash(_Loop(_frames(7)), _meta(7))
    for i in (0, 3, 6):
        frames = _frames(7)
        frames[i] = frames[i] + 1
        assert content_hash(_Loop(frames), _meta(7)) != base
    other = _frames(7)
    other[1] = other[1] + 1  # a frame the hash does not read
    assert content_hash(_Loop(other), _meta(7)) == base
    assert content_hash(_Loop(_frames(7)), _meta(7, uid="1.2.4")) != base


def test_single_frame() -> None:
    loop = _Loop(_frames(1))
    assert len(content_hash(loop, _meta(1))) == 64
    assert loop.asked == [0]
