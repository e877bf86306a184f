"""Typed loading errors, each explained in one sentence a clinician understands.

The loader wraps every pydicom/numpy/OpenCV failure into one of these so that
neither the CLI nor the GUI ever shows a raw traceback for a bad file.
"""

from __future__ import annotations

import os

from tnseg_desktop.errors import UserFacingError


class LoadError(UserFacingError):
    """A file or folder could not be opened as frames."""

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(message, None if path is None else os.fspath(path))


class SourceNotFoundError(LoadError):
    """The path does not exist or cannot be read."""


class NotDicomError(LoadError):
    """The file is neither DICOM nor a supported image."""


class EmptyFileError(NotDicomError):
    """The file has no content at all."""


class NotAnImageError(LoadError):
    """A valid DICOM object that holds no image (structured report, PDF, waveform...)."""


class NoPixelDataError(LoadError):
    """An image object whose pixel data element is missing."""


class MissingCodecError(LoadError):
    """The compression is known but the package that decodes it is not installed."""

    def __init__(self, message: str, path: str | os.PathLike | None = None, package: str = "") -> None:
        super().__init__(message, path)
        self.package = package


class CorruptFileError(LoadError):
    """The file is damaged or truncated (header or pixel data)."""


class CorruptPixelDataError(CorruptFileError):
    """Pixel data is truncated, damaged, or shorter than the header says."""


class AbsurdDimensionsError(LoadError):
    """Rows, columns, frames or samples are missing or implausible."""


class UnsupportedFileError(LoadError):
    """A readable file the loader deliberately does not handle."""


class UnsupportedTransferSyntaxError(UnsupportedFileError):
    """The transfer syntax UID is unknown or has no decoder at all."""
