"""Test-time ablation: each variant removes exactly its component; the report is complete."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.io import imsave

from napari_ois.cli import main
from napari_ois.core.classical.segmenter import ClassicalSegmenter
from napari_ois.core.errors import InputError
from napari_ois.evaluate.ablation import VARIANTS, ablated, ablated_segmenter, run_ablation
from napari_ois.evaluate.click_eval import evaluate_clicks, summarize
from napari_ois.datasets.loaders import load_click_items
from napari_ois.model import OISModel, preset_config, save_checkpoint


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture
def prior_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = OISModel(preset_config("test", use_prior=True))
    return str(save_checkpoint(tmp_path / "prior.pt", model, {"steps": 0}))


@pytest.fixture
def folder_dataset(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "objects"
    (root / "img").mkdir(parents=True)
    (root / "gt").mkdir()
    for i in range(2):
        image = (40 + 30 * rng.random((48, 64, 3))).astype(np.uint8)
        mask = np.zeros((48, 64), np.uint8)
        mask[10 + 5 * i : 35, 12 : 40 + 4 * i] = 255
        image[mask > 0] = 200
        imsave(root / "img" / f"obj{i}.png", image, check_contrast=False)
        imsave(root / "gt" / f"obj{i}.png", mask, check_contrast=False)
    return root


def test_each_variant_removes_only_its_component(prior_checkpoint):
    from napari_ois.model import load_model

    model = load_model(prior_checkpoint, "cpu")
    for variant, (switches, modules) in VARIANTS.items():
        out = ablated(model, variant)
        for name in modules:
            assert getattr(out, name) is None and getattr(model, name) is not None
        for key, value in switches.items():
            assert getattr(out.config, key) == value and getattr(model.config, key) != value
    with pytest.raises(InputError):
        ablated(model, "no such thing")
    assert not ablated_segmenter(model, "no zoom").zoom.enabled and ablated_segmenter(model, "full").zoom.enabled
    no_crop_prior = ablated_segmenter(model, "no crop prior").zoom
    assert no_crop_prior.enabled and not no_crop_prior.crop_prior and ablated_segmenter(model, "full").zoom.crop_prior


def test_prior_only_zeroes_the_residual_head_of_a_copy():
    torch.manual_seed(0)
    model = OISModel(preset_config("test", use_prior=True)).eval()
    head = model.decoder.head[-1]
    with torch.no_grad():
        head.weight.normal_()  # as if trained
    out = ablated(model, "prior only")
    assert float(out.decoder.head[-1].weight.abs().sum()) == 0.0
    assert float(head.weight.abs().sum()) > 0  # the original keeps its weights


def test_untrained_prior_model_scores_like_classical_and_every_row_is_reported(prior_checkpoint, folder_dataset,
                                                                               tmp_path):
    payload = run_ablation(prior_checkpoint, str(folder_dataset), "folder", None, 3,
                           json_path=str(tmp_path / "ablation.json"), log=lambda _: None)
    assert list(payload["rows"]) == list(VARIANTS)
    assert (tmp_path / "ablation.json").is_file()
    classical = ClassicalSegmenter(work_size=320)
    expected = summarize(evaluate_clicks(classical, load_click_items(str(folder_dataset), "folder"), 3), 3)
    # The residual head starts at 0: "full" is the classical backend click for click.
    assert payload["rows"]["full"]["miou_at_1"] == pytest.approx(expected["miou_at"][0], abs=1e-3)
    assert payload["rows"]["full"]["noc_85"] == pytest.approx(expected["noc"]["85"])


def test_cli_prints_the_table(prior_checkpoint, folder_dataset, capsys):
    assert main(["eval", "ablation", str(folder_dataset), "--format", "folder", "--checkpoint", prior_checkpoint,
                 "--max-clicks", "2"]) == 0
    out = capsys.readouterr().out
    assert "| variant |" in out and all(f"| {name} |" in out for name in VARIANTS)


def test_cli_runs_the_chosen_variants_only(prior_checkpoint, folder_dataset, capsys):
    assert main(["eval", "ablation", str(folder_dataset), "--format", "folder", "--checkpoint", prior_checkpoint,
                 "--max-clicks", "2", "--variants", "full,prior only"]) == 0
    out = capsys.readouterr().out
    assert "| full |" in out and "| prior only |" in out and "| no zoom |" not in out
    assert main(["eval", "ablation", str(folder_dataset), "--format", "folder", "--checkpoint", prior_checkpoint,
                 "--variants", "no such part"]) != 0
    assert "unknown ablation" in capsys.readouterr().err
