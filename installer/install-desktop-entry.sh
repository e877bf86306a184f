#!/usr/bin/env bash
# Add tnseg-desktop to the current user's application menu (no root needed).
# Run from the unpacked bundle folder: ./install-desktop-entry.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/256x256/apps"
mkdir -p "$apps" "$icons"
cp "$here/tnseg-desktop.png" "$icons/tnseg-desktop.png"
# point Exec/TryExec at this bundle's executable
sed -e "s|^Exec=tnseg-desktop|Exec=\"$here/tnseg-desktop\"|" -e "s|^TryExec=tnseg-desktop|TryExec=$here/tnseg-desktop|" \
    "$here/tnseg-desktop.desktop" > "$apps/tnseg-desktop.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" || true
echo "installed $apps/tnseg-desktop.desktop"
