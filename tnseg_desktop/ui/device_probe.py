"""Finding the compute device off the GUI thread (importing torch takes a second or two)."""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)


def describe_compute_device() -> str:
    """Status-bar text for the device models will run on."""
    try:
        from tnseg_desktop.model.device import choose_device, describe_device

        return describe_device(choose_device("auto"))
    except Exception as exc:  # no torch, broken driver: viewing still works
        log.warning("could not determine the compute device: %s", exc)
        return "Compute device unavailable"


class DeviceProbe(QObject):
    """Runs :func:`describe_compute_device` on a thread and reports the text once."""

    found = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.text: str | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="tnseg-device-probe", daemon=True)

    def start(self) -> None:
        if not self._stopped and not self._thread.is_alive() and self.text is None:
            self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Never start after this; join a running probe (it imports torch). True when no thread is left."""
        self._stopped = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        self.text = describe_compute_device()
        self.found.emit(self.text)
