"""The npe2 manifest: valid, discovered by napari, every contribution importable, shipped in the wheel."""

import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

import npe2
import pytest

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "napari.yaml"


def test_manifest_is_valid_and_every_command_resolves():
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "napari-ois"
    for command in manifest.contributions.commands:
        module, attr = command.python_name.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), command.id


def test_installed_package_carries_the_root_manifest():
    import napari_ois

    installed = Path(napari_ois.__file__).parent / "napari.yaml"
    assert installed.read_text() == MANIFEST.read_text()


@pytest.fixture
def plugin_manager():
    """napari's own plugin manager, after discovering installed plugins (as napari does at start)."""
    pm = npe2.PluginManager.instance()
    pm.discover()
    return pm


def test_napari_discovers_every_contribution(plugin_manager):
    pm = plugin_manager
    assert "napari-ois" in {m.name for m in pm.iter_manifests()}
    manifest = pm.get_manifest("napari-ois")
    contributions = manifest.contributions
    ours = npe2.PluginManifest.from_file(MANIFEST).contributions
    assert {c.id for c in contributions.commands} == {c.id for c in ours.commands}
    assert [w.display_name for w in contributions.widgets] == ["Annotate objects"]
    assert {s.key for s in contributions.sample_data} == {"video", "cells", "nuclei3d"}
    assert len(contributions.readers) == 1 and len(contributions.writers) == 4
    # The reader really is offered for videos.
    readers = [r.command for r in pm.iter_compatible_readers(["clip.mp4"])]
    assert "napari-ois.get_reader" in readers


@pytest.mark.parametrize("key", ["video", "cells", "nuclei3d"])
def test_sample_data_contributions_load(key, plugin_manager):
    pm = plugin_manager
    sample = next(s for s in pm.get_manifest("napari-ois").contributions.sample_data if s.key == key)
    layers = sample.open()
    data, meta, kind = layers[0]
    assert kind == "image" and data.ndim >= 3 and meta["name"]


def test_built_wheel_ships_manifest_and_sample_data(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(tmp_path.glob("napari_ois-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert zf.read("napari_ois/napari.yaml") == MANIFEST.read_bytes()
        for sample in (ROOT / "sample_data").iterdir():
            assert zf.read(f"napari_ois/sample_data/{sample.name}") == sample.read_bytes()
        # The trained default of the ois backend ships too (issue #5: at most 25 MB).
        shipped = ROOT / "src" / "napari_ois" / "checkpoints" / "default.pt"
        assert zf.read("napari_ois/checkpoints/default.pt") == shipped.read_bytes()
        assert shipped.stat().st_size <= 25 * 2**20
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "napari.manifest" in entry_points and "napari-ois = napari_ois.cli:main" in entry_points
