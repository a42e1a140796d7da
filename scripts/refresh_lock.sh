#!/usr/bin/env bash
# Re-resolve every dependency from the registry and write requirements/lock.txt.
# Run after changing dependencies in pyproject.toml; then run the README's two commands and
# commit the new lock only if both pass. requirements/resolve-pins.txt holds the few pins the
# resolver needs help with (each with its reason); torch/torchvision stay at the builds on disk.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --upgrade pip
"$tmp/venv/bin/python" -m pip install -q --no-cache-dir -c requirements/resolve-pins.txt \
  torch==2.14.1 torchvision==0.29.1 -e ".[test,eval,train,batch]"
{
  sed -n '/^# napari-ois/,/^#   then run/p' requirements/lock.txt
  "$tmp/venv/bin/python" -m pip freeze --all --exclude-editable | grep -E '^(pip|setuptools)==' || true
  "$tmp/venv/bin/python" -m pip freeze --exclude-editable | grep -v -i '^napari-ois'
} > requirements/lock.txt.new
mv requirements/lock.txt.new requirements/lock.txt
echo "requirements/lock.txt refreshed: $(grep -c '==' requirements/lock.txt) pins"
