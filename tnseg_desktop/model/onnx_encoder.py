"""LiteMedSAM's image encoder under ONNX Runtime, exported once per weights file and toolchain.

The encoder is exported with ``torch.onnx.export`` (the torch.export-based
exporter, which needs the ``onnx`` and ``onnxscript`` packages) the first time
it is asked for, into ``user_data_dir()/onnx/``. The file name holds the
weights' sha256 and the torch and onnx versions, so a new weights file or a
new exporter writes a new file and never reuses a stale graph.

The export is written atomically, and a small JSON sidecar beside it records
its size and sha256 (written after it). On load the bytes are checked against
the sidecar before ONNX Runtime sees them; a missing sidecar, a mismatch, or a
session that fails to build means the file is damaged: it is logged, deleted
and exported again.

Export costs tens of seconds on one CPU core: it happens on the first
``OnnxEncoder.__call__`` (or ``load``), which the refiner runs from its
background precompute, never from the GUI thread.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tnseg_desktop.atomic_write import atomic_path, atomic_write_text
from tnseg_desktop.paths import user_data_dir

log = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAME = "embedding"
# bumped when the export arguments change, so an old file is not taken for a new one
EXPORT_FORMAT = 1


class OnnxUnavailable(RuntimeError):
    """ONNX Runtime, or the exporter's packages, are not installed."""


def onnx_available() -> bool:
    """True when onnxruntime, onnx and onnxscript import (everything export and inference need)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    """Where exported encoders live (created on demand)."""
    return user_data_dir() / "onnx"


def _clean(version: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", version)


def onnx_file_name(weights_sha: str, torch_version: str | None = None, onnx_version: str | None = None) -> str:
    """``litemedsam-encoder-<sha256>-torch<v>-onnx<v>-f<format>.onnx``."""
    if torch_version is None:
        torch_version = torch.__version__
    if onnx_version is None:
        import onnx

        onnx_version = onnx.__version__
    return f"litemedsam-encoder-{weights_sha}-torch{_clean(torch_version)}-onnx{_clean(onnx_version)}-f{EXPORT_FORMAT}.onnx"


def state_digest(module: nn.Module) -> str:
    """sha256 of a module's tensors (names, shapes, bytes): a cache key for weights that came from no file."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def export_encoder(encoder: nn.Module, path: Path, img_size: int) -> float:
    """Export ``encoder`` ((1, 3, s, s) -> (1, C, g, g)) to ``path`` atomically, with its sidecar; returns seconds."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise OnnxUnavailable(f"exporting the encoder to ONNX needs the onnx and onnxscript packages ({exc})") from None
    start = time.perf_counter()
    # a private copy: tracing must not touch the module another thread may be running
    module = copy.deepcopy(encoder).float().cpu().eval()
    example = torch.zeros(1, 3, img_size, img_size, dtype=torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], external_data=False, verbose=False)
        program.save(str(tmp), external_data=False)
        data = tmp.read_bytes()
    atomic_write_text(_sidecar(path), json.dumps({"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "torch": torch.__version__}) + "\n")
    return time.perf_counter() - start


def _checked_bytes(path: Path) -> bytes | None:
    """The file's bytes when they match the sidecar; None (and the reason logged) when not."""
    if not path.is_file():
        return None
    try:
        meta = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        data = path.read_bytes()
    except (OSError, ValueError) as exc:
        log.warning("cached ONNX encoder %s has no readable record (%s): exporting it again", path, exc)
        return None
    if len(data) != meta.get("bytes") or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        log.warning("cached ONNX encoder %s is damaged or partial (%d bytes, expected %s): exporting it again", path, len(data), meta.get("bytes"))
        return None
    return data


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)
    _sidecar(path).unlink(missing_ok=True)


@dataclass
class LoadReport:
    path: Path
    exported: bool  # False: the cached file was reused
    export_s: float  # 0 when reused
    replaced_damaged: bool


class OnnxEncoder:
    """A callable (3, s, s) float32 -> (C, g, g) float32 running an exported encoder on ONNX Runtime's CPU provider.

    Nothing is exported or loaded until the first call (or ``load``); the
    report of that step is in ``report``.
    """

    def __init__(self, encoder: nn.Module, weights_sha: str | None = None, img_size: int = 256, threads: int | None = None, folder: Path | None = None) -> None:
        self._encoder = encoder
        self.weights_sha = weights_sha
        self.img_size = int(img_size)
        if threads is None:
            from tnseg_desktop.model.device import threads_leaving_a_core

            threads = threads_leaving_a_core()
        self.threads = max(1, int(threads))
        self.folder = Path(folder) if folder is not None else None
        self.report: LoadReport | None = None
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        sha = self.weights_sha or state_digest(self._encoder)
        self.weights_sha = sha
        return (self.folder or cache_dir()) / onnx_file_name(sha)

    def _new_session(self, data: bytes) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle pool threads would otherwise spin on cores the GUI and the training worker need
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME] or [o.name for o in outputs] != [OUTPUT_NAME]:
            raise ValueError(f"unexpected graph inputs/outputs {[i.name for i in inputs]} -> {[o.name for o in outputs]}")
        return session

    def load(self) -> LoadReport:
        """Reuse the cached export when it is intact, else export (again); idempotent."""
        with self._lock:
            if self._session is not None and self.report is not None:
                return self.report
            try:
                import onnxruntime  # noqa: F401
            except ImportError as exc:
                raise OnnxUnavailable(f"ONNX Runtime is not installed ({exc})") from None
            path = self.path
            damaged = path.exists()  # from here on, a file that is there but not used is a damaged one
            data = _checked_bytes(path)
            if data is not None:
                try:
                    self._session = self._new_session(data)
                    self.report = LoadReport(path, exported=False, export_s=0.0, replaced_damaged=False)
                    log.info("ONNX encoder: reusing %s", path)
                    return self.report
                except Exception as exc:  # noqa: BLE001 - any parse/graph failure means the file cannot be trusted
                    log.warning("cached ONNX encoder %s does not load (%s): exporting it again", path, " ".join(str(exc).split())[:200])
            if damaged:
                _discard(path)
            log.info("ONNX encoder: exporting LiteMedSAM's image encoder to %s (once per weights and torch/onnx version)", path)
            seconds = export_encoder(self._encoder, path, self.img_size)
            data = _checked_bytes(path)
            if data is None:
                raise RuntimeError(f"the ONNX export just written to {path} does not read back")
            self._session = self._new_session(data)
            self.report = LoadReport(path, exported=True, export_s=seconds, replaced_damaged=damaged)
            # a warning so that the one-time cost shows in the default log configuration
            log.warning("ONNX encoder: one-time export took %.1f s; later runs reuse %s", seconds, path.name)
            return self.report

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(3, s, s) float32 preprocessed image -> (C, g, g) float32 embedding."""
        if self._session is None:
            self.load()
        x = np.ascontiguousarray(image, dtype=np.float32)[None]
        out = self._session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        return np.asarray(out[0], dtype=np.float32)
