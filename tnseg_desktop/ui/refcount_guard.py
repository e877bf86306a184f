"""Work-around for a PySide6 6.12 binding bug on Python < 3.12: void Qt calls drop a reference to None.

Measured here (PySide6 6.12.0, CPython 3.11.7): every call such as
``QLabel.setText`` or ``QGraphicsItem.setVisible`` lowers ``sys.getrefcount(None)``
by one, and bool-returning calls do the same to True/False. A viewer redrawing
frames makes thousands of such calls a minute; once None's count reaches zero
the interpreter aborts ("none_dealloc: deallocating None"). From Python 3.12
these objects are immortal and the bug is harmless.

The guard is installed only when the bug is detected at start-up: it gives the
three singletons a large reserve of references and tops it up from a timer.
Extra references to these statically allocated objects cost nothing.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel

log = logging.getLogger(__name__)

RESERVE = 1_000_000
INTERVAL_MS = 250

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


def binding_drops_references() -> bool:
    """True when void Qt calls lower None's reference count (the bug is present)."""
    if sys.version_info >= (3, 12):
        return False
    probe = QLabel()
    before = sys.getrefcount(None)
    for _ in range(20):
        probe.setText("x")
    lost = before - sys.getrefcount(None)
    probe.deleteLater()
    return lost >= 10


def _top_up(target: object, floor: int) -> None:
    missing = floor - sys.getrefcount(target)
    for _ in range(max(0, missing)):
        _incref(target)


class RefcountGuard(QObject):
    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.floors = {name: sys.getrefcount(obj) + RESERVE for name, obj in (("None", None), ("True", True), ("False", False))}
        self.tick()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.tick)
        self.timer.start(INTERVAL_MS)

    def tick(self) -> None:
        _top_up(None, self.floors["None"])
        _top_up(True, self.floors["True"])
        _top_up(False, self.floors["False"])


def install_refcount_guard(app: QObject) -> RefcountGuard | None:
    """Install the guard on ``app`` if this PySide6 build needs it; returns it (or None)."""
    if not binding_drops_references():
        return None
    log.info("PySide6 drops references to None on this Python; keeping a reserve (see refcount_guard.py)")
    return RefcountGuard(app)
