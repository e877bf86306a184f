#!/usr/bin/env bash
# Build the one-folder Linux bundle dist/tnseg-desktop/ and run its self-test.
#
#   installer/build.sh            (from anywhere; uses .venv/bin/python unless PYTHON is set)
#
# Needs PyInstaller in that environment (`pip install pyinstaller`); the shipped
# models/tnseg-lite.safetensors should exist first, or the bundle's self-test fails.
# Takes several minutes (torch is large); not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"

if ! "$PY" -m PyInstaller --version >/dev/null 2>&1; then
    echo "PyInstaller is not installed in $PY's environment: $PY -m pip install pyinstaller" >&2
    exit 2
fi
[ -f resources/icons/tnseg-desktop.png ] || "$PY" resources/icons/make_icon.py
[ -f resources/sample/thyroid_sample.dcm ] || "$PY" resources/sample/make_sample.py

start=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller installer/tnseg-desktop.spec
echo "built in $(( $(date +%s) - start )) s"

# the desktop entry and icon travel with the bundle; install-desktop-entry.sh registers them for the user
cp installer/tnseg-desktop.desktop installer/install-desktop-entry.sh dist/tnseg-desktop/
cp resources/icons/tnseg-desktop.png dist/tnseg-desktop/tnseg-desktop.png

du -sh dist/tnseg-desktop
QT_QPA_PLATFORM=offscreen dist/tnseg-desktop/tnseg-desktop --self-test
