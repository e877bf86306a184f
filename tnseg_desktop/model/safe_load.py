"""The one safe loader for weights files: a model file is untrusted input.

Public entry point (other layers call exactly this)::

    load_state_dict(path, expected_sha256=None) -> dict[str, torch.Tensor]

- ``expected_sha256``: when given, the file's sha256 is computed first and a
  mismatch raises :class:`WeightsHashMismatch` before a single byte is parsed.
- safetensors files are read with ``safetensors`` (no code can run).
- ``torch.save`` files (zip or legacy) are read with
  ``torch.load(..., weights_only=True)``; a file whose pickle names anything
  beyond tensors and plain containers raises :class:`UnsafeWeightsFile` and
  nothing in it runs.
- TorchScript archives (OpenAI's ``ViT-B-16.pt``) are refused by
  ``torch.load(weights_only=True)``; their tensors are read here by a
  restricted unpickler that only rebuilds tensors and records the TorchScript
  module attributes as plain data. Their code is never compiled or run.
- A ``{"state_dict": {...}}`` or ``{"model": {...}}`` wrapper is unwrapped and
  a ``module.`` (DataParallel) prefix removed.

Every failure is a :class:`~tnseg_desktop.errors.UserFacingError` subclass
with a one-sentence message naming the file.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.file_hash import sha256_of



class WeightsFileError(UserFacingError):
    """A weights file that cannot be used."""


class UnsafeWeightsFile(WeightsFileError):
    """The file carries pickled Python objects beyond tensors (it could run code)."""


class WeightsHashMismatch(WeightsFileError):
    """The file's sha256 differs from the one expected for it."""


def check_sha256(path: str | Path, expected_sha256: str) -> None:
    actual = sha256_of(path)
    if actual.lower() != expected_sha256.lower():
        raise WeightsHashMismatch(
            f"checksum mismatch (sha256 {actual[:12]}..., expected {expected_sha256[:12]}...): the file is damaged or not the expected model, so it was not loaded.",
            str(path),
        )


def _is_safetensors(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return 0 < header_len < 100_000_000 and head[8:9] == b"{"


def _archive_prefix(names: list[str]) -> str | None:
    for name in names:
        if name.endswith("data.pkl") and name.count("/") == 1:
            return name[: -len("data.pkl")]
    return None


def _is_torchscript(zf: zipfile.ZipFile, prefix: str) -> bool:
    names = zf.namelist()
    return any(n.startswith(prefix + "code/") for n in names) or (prefix + "constants.pkl") in names


class _ScriptModuleRecord:
    """Stands in for a TorchScript class: BUILD only stores its attributes as data."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["__state__"] = state


class _StorageKind:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *_: Any) -> torch.Tensor:
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


# TorchScript pickles typed lists through these helpers; they only wrap plain values
_INERT_JIT_HELPERS: dict[str, Callable[..., Any]] = {
    "build_intlist": list,
    "build_doublelist": list,
    "build_boollist": list,
    "build_tensorlist": list,
    "build_strlist": list,
    "restore_type_tag": lambda value, _tag=None: value,
}


class _TorchScriptTensorUnpickler(pickle.Unpickler):
    """Allows tensors, OrderedDict and inert records for ``__torch__`` classes; nothing else."""

    def __init__(self, data: bytes, zf: zipfile.ZipFile, prefix: str, path: Path) -> None:
        super().__init__(io.BytesIO(data))
        self._zf = zf
        self._prefix = prefix
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageKind(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module == "torch.jit._pickle" and name in _INERT_JIT_HELPERS:
            return _INERT_JIT_HELPERS[name]
        if module == "__torch__" or module.startswith("__torch__."):
            return type(name, (_ScriptModuleRecord,), {})
        raise UnsafeWeightsFile(
            f"the TorchScript archive refers to '{module}.{name}', which a weights file should not contain, so it was not loaded.",
            str(self._path),
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageKind)):
            raise UnsafeWeightsFile("the TorchScript archive holds an unknown kind of stored object, so it was not loaded.", str(self._path))
        kind, key = pid[1], str(pid[2])
        raw = bytearray(self._zf.read(f"{self._prefix}data/{key}"))
        if not raw:
            return torch.empty(0, dtype=kind.dtype)
        return torch.frombuffer(raw, dtype=kind.dtype)


def _collect_tensors(obj: Any, prefix: str, out: dict[str, torch.Tensor], seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    for key, value in vars(obj).items():
        if isinstance(value, torch.Tensor):
            out[prefix + key] = value
        elif isinstance(value, _ScriptModuleRecord):
            _collect_tensors(value, f"{prefix}{key}.", out, seen)


def _load_torchscript_tensors(zf: zipfile.ZipFile, prefix: str, path: Path) -> dict[str, torch.Tensor]:
    try:
        root = _TorchScriptTensorUnpickler(zf.read(prefix + "data.pkl"), zf, prefix, path).load()
    except WeightsFileError:
        raise
    except Exception as exc:
        raise WeightsFileError(f"the TorchScript archive could not be read ({type(exc).__name__}: {exc}).", str(path)) from None
    if not isinstance(root, _ScriptModuleRecord):
        raise WeightsFileError("the TorchScript archive does not hold a model.", str(path))
    out: dict[str, torch.Tensor] = {}
    _collect_tensors(root, "", out, set())
    return out


def _torch_load_weights_only(path: Path) -> Any:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        detail = f" ({first[:160]})" if first else ""
        raise UnsafeWeightsFile(
            f"the file contains pickled Python objects, not only weights, so it was refused and nothing in it was run{detail}.",
            str(path),
        ) from None
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise WeightsFileError(f"not a readable weights file ({' '.join(str(exc).split())[:200]}).", str(path)) from None


def _as_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj:
        raise WeightsFileError("the file does not hold a dictionary of weights.", str(path))
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsFileError("the file holds no weight tensors.", str(path))
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def load_state_dict(path: str | Path, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read a weights file into a flat ``name -> tensor`` dict on the CPU without running anything in it."""
    path = Path(path)
    if not path.is_file():
        raise WeightsFileError("weights file not found.", str(path))
    if expected_sha256:
        check_sha256(path, expected_sha256)
    if _is_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsFileError(f"not a readable safetensors file ({exc}).", str(path)) from None
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            prefix = _archive_prefix(zf.namelist())
            if prefix is not None and _is_torchscript(zf, prefix):
                return _load_torchscript_tensors(zf, prefix, path)
    return _as_state_dict(_torch_load_weights_only(path), path)
