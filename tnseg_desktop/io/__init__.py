"""io layer: loading DICOM cines and images, and pure file formats (see DESIGN.md section 1).

Mask PNGs (export_png: the one mask PNG encoder), DICOM SEG (seg_writer) and
de-identification (deid) live here; io imports neither the store nor torch
(tests/test_layering.py checks), so exporters that read the store are in store/.

`open_source(path)` returns a `Cine` whose frames decode lazily; errors are
`tnseg_desktop.io.errors.LoadError` subclasses.
"""

from tnseg_desktop.io.cine import Cine
from tnseg_desktop.io.errors import LoadError
from tnseg_desktop.io.source import open_source
from tnseg_desktop.io.types import CineMeta

__all__ = ["Cine", "CineMeta", "LoadError", "open_source"]
