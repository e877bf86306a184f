"""The installed PySide6 must not drop references to None (6.12.0 on CPython 3.11 does, and the app aborts)."""

import sys

from PySide6.QtWidgets import QLabel


def test_void_qt_calls_keep_none_reference_count(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(200):
        label.setText("x")
    assert before - sys.getrefcount(None) < 50
