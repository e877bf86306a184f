"""io layer: loading DICOM cines and images (see DESIGN.md section 1).

`open_source(path)` returns a `Cine` whose frames decode lazily; errors are
`tnseg_desktop.io.errors.LoadError` subclasses.
"""

from tnseg_desktop.io.cine import Cine
from tnseg_desktop.io.errors import LoadError
from tnseg_desktop.io.source import open_source
from tnseg_desktop.io.types import CineMeta

__all__ = ["Cine", "CineMeta", "LoadError", "open_source"]
