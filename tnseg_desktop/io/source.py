"""`open_source`: the one entry point from a path to a `Cine`."""

from __future__ import annotations

import os
from pathlib import Path

from tnseg_desktop.io.cine import Cine, FrameSource
from tnseg_desktop.io.dicom_reader import looks_like_dicom, open_dicom_file
from tnseg_desktop.io.errors import EmptyFileError, NotDicomError, SourceNotFoundError, UnsupportedFileError
from tnseg_desktop.io.frame_cache import DEFAULT_CACHE_BYTES
from tnseg_desktop.io.image_reader import IMAGE_SUFFIXES, ImageFrameSource, sniff_image
from tnseg_desktop.io.series import open_folder


def _open_file(path: Path) -> FrameSource:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except FileNotFoundError:
        raise SourceNotFoundError("The file does not exist.", path) from None
    except OSError as exc:
        raise SourceNotFoundError(f"The file cannot be read ({exc.strerror or exc}).", path) from None
    if not head:
        raise EmptyFileError("The file is empty.", path)
    if looks_like_dicom(head):
        return open_dicom_file(path)
    kind = sniff_image(head)
    if kind:
        return ImageFrameSource([path], path, kind)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise NotDicomError(f"The file is named like a {IMAGE_SUFFIXES[path.suffix.lower()]} image but its content is not one.", path)
    raise NotDicomError("This is not a DICOM file or a supported image (PNG, JPEG, BMP, TIFF).", path)


def open_source(path: str | os.PathLike, cache_bytes: int = DEFAULT_CACHE_BYTES) -> Cine:
    """Open a DICOM file, a folder (DICOM series or images) or a plain image.

    Nothing is decoded yet; frames decode on first access. Raises a
    `tnseg_desktop.io.errors.LoadError` subclass with a one-sentence message
    for anything that cannot be shown.
    """
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise SourceNotFoundError("The file or folder does not exist.", p)
    if p.is_dir():
        source: FrameSource = open_folder(p)
    elif p.is_file():
        source = _open_file(p)
    else:
        raise UnsupportedFileError("This is not a regular file or folder.", p)
    return Cine(source, cache_bytes=cache_bytes)
