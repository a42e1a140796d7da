#!/usr/bin/env bash
# Debian packages napari needs to open a window: Xvfb (a virtual display for tests and
# headless screenshots) and the Qt xcb platform libraries. Needs root.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq xvfb xauth libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 \
  libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 \
  libxcb-xinerama0 libxcb-xfixes0 libxcb-xkb1 libdbus-1-3 libfontconfig1 libgl1 libegl1 >/dev/null
echo "system packages installed"
