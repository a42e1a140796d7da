#!/usr/bin/env bash
# Create .venv and install napari-ois with its GUI and test extras, at the exact versions
# tested together (requirements/lock.txt, used as pip constraints; see its header to refresh).
# torch/torchvision are pinned here and in the lock, not in the package's own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LOCK=requirements/lock.txt
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != "3.11" ]; then
  echo "setup.sh: warning: the lock was made with Python 3.11; $PYTHON is $version (pins may not exist for it)" >&2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
echo "setup.sh: installing napari-ois and its locked dependencies into .venv (a few minutes on a new machine)" >&2
.venv/bin/python -m pip install -q --disable-pip-version-check -c "$LOCK" pip
.venv/bin/python -m pip install -q -c "$LOCK" --build-constraint requirements/build-lock.txt \
  torch==2.14.1 torchvision==0.29.1 -e ".[test]"
echo "napari-ois installed in .venv"
