"""Loading the frames a job names: store frames (source file + frame index + stored mask) or folder images."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.prompts import to_gray
from tnseg_desktop.training.data import Sample, read_gray


class FrameLoader:
    """Reads job frames, opening each source file once; frames that cannot be read are skipped and listed."""

    def __init__(self) -> None:
        self._sources: dict[str, Any] = {}
        self._mask_files: dict[str, Any] = {}
        self.skipped: list[dict[str, str]] = []

    def _source(self, path: str):
        if path not in self._sources:
            from tnseg_desktop.io import open_source

            self._sources[path] = open_source(path)
        return self._sources[path]

    def _masks(self, store_root: str):
        if store_root not in self._mask_files:
            from tnseg_desktop.store.maskfiles import MaskFiles

            self._mask_files[store_root] = MaskFiles(Path(store_root))
        return self._mask_files[store_root]

    def load(self, ref: dict[str, Any]) -> Sample:
        key = str(ref["key"])
        if "image" in ref:
            image = read_gray(Path(ref["image"]))
            mask = read_gray(Path(ref["mask"])) > 127
        else:
            image = to_gray(self._source(str(ref["source"])).frame(int(ref["frame"])))
            mask = self._masks(str(ref["store"])).get(str(ref["mask_file"]), str(ref["mask_sha256"]))
        if mask.shape != image.shape:
            raise UserFacingError(f"the mask of frame {key} is {mask.shape[1]}x{mask.shape[0]} but the frame is {image.shape[1]}x{image.shape[0]}.")
        return Sample(key, image, mask)

    def load_all(self, refs: Sequence[dict[str, Any]], should_stop: Callable[[], bool] | None = None) -> list[Sample]:
        out = []
        for ref in refs:
            if should_stop is not None and should_stop():
                break
            try:
                out.append(self.load(ref))
            except (UserFacingError, OSError, KeyError, IndexError, ValueError) as exc:
                # a moved or deleted source must not sink the whole run; the count is reported
                text = exc.one_line() if isinstance(exc, UserFacingError) else f"{type(exc).__name__}: {exc}"
                self.skipped.append({"key": str(ref.get("key", "?")), "reason": text})
        return out

    def close(self) -> None:
        for cine in self._sources.values():
            try:
                cine.close()
            except Exception:  # closing is best effort
                pass
        self._sources.clear()
