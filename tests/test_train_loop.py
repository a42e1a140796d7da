"""The training loop: learns on a tiny model, is deterministic, resumes, and its checkpoints load as a backend."""

import json

import numpy as np
import pytest
import torch

from napari_ois.core.click_simulator import error_distances
from napari_ois.core.clicks import Click
from napari_ois.core.frames import FrameStack
from napari_ois.core.backends import get_segmenter
from napari_ois.core.session import AnnotationSession
from napari_ois.datasets.object_sets import is_held_out_image
from napari_ois.train.trainer import TrainConfig, Trainer

SYNTHETIC_ONLY = {"synthetic": 1.0, "microscopy": 1.0}  # no dependency on ../shared/data


def config(steps, **kw):
    kw.setdefault("validate_every", 0)
    return TrainConfig(preset="test", image_size=64, batch_size=2, steps=steps, log_every=1,
                       warmup_steps=1, weights=SYNTHETIC_ONLY, threads=1, **kw)


def losses(run_dir):
    return [r["loss"] for r in map(json.loads, (run_dir / "log.jsonl").read_text().splitlines()) if "loss" in r]


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_same_seed_same_run(tmp_path):
    for name in ("a", "b"):
        Trainer(config(3), tmp_path / name, log=lambda _: None).run()
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    assert len(losses(tmp_path / "a")) == 3 and all(np.isfinite(losses(tmp_path / "a")))


def test_resume_continues_where_it_stopped(tmp_path):
    Trainer(config(4), tmp_path / "full", log=lambda _: None).run()
    Trainer(config(4), tmp_path / "split", log=lambda _: None).run(max_steps=2)  # "killed" after 2
    resumed = Trainer(config(4), tmp_path / "split", log=lambda _: None)
    assert resumed.step == 2
    resumed.run()
    # The same sample stream and optimizer state: steps 3-4 match the uninterrupted run.
    assert np.allclose(losses(tmp_path / "split")[2:], losses(tmp_path / "full")[2:], rtol=1e-4)


def test_loss_goes_down_on_a_fixed_batch(tmp_path):
    trainer = Trainer(config(1, lr=3e-3), tmp_path / "fit", log=lambda _: None)
    from napari_ois.train.real_data import mixed_stream
    from napari_ois.train.step import StepSettings, training_step

    samples = [s for _, s in zip(range(2), mixed_stream(0, 64, SYNTHETIC_ONLY))]
    settings = StepSettings(max_iter_clicks=0)
    values = []
    for i in range(40):
        out = training_step(trainer.model, samples, np.random.default_rng(0), settings)
        trainer.optimizer.zero_grad()
        out["loss"].backward()
        trainer.optimizer.step()
        values.append(out["nfl"])
    assert np.mean(values[-5:]) < 0.85 * np.mean(values[:5])


def test_checkpoint_from_training_works_as_the_ois_backend(tmp_path):
    Trainer(config(2), tmp_path / "run", log=lambda _: None).run()
    segmenter = get_segmenter("ois", "cpu", str(tmp_path / "run" / "last.pt"))
    video = np.zeros((3, 40, 48), np.uint8)
    video[:, 10:30, 10:30] = 200
    session = AnnotationSession(FrameStack(video), segmenter=segmenter)
    prediction = session.add_click(Click(1, 0, 20, 20))
    assert prediction.prob.shape == (40, 48) and 0 <= prediction.prob.min() <= prediction.prob.max() <= 1
    assert segmenter.model.metadata["steps"] == 2


def test_validation_split_is_held_out_by_image_id():
    # COCO image ids: the split the shipped checkpoint was validated with.
    assert is_held_out_image("000000123440") and not is_held_out_image("000000123441")
    # Other names are hashed: the same answer every time, about 1 image in 20 held out.
    names = [f"plate{i}_well{i % 7}" for i in range(2000)]
    held = [n for n in names if is_held_out_image(n)]
    assert held == [n for n in names if is_held_out_image(n)]
    assert 60 < len(held) < 140


def test_single_click_starts_begin_with_one_positive_click_deep_inside(tmp_path, monkeypatch):
    from napari_ois.train import step as step_module
    from napari_ois.train.real_data import mixed_stream
    from napari_ois.train.step import StepSettings, training_step

    trainer = Trainer(config(1), tmp_path / "run", log=lambda _: None)
    samples = [s for _, s in zip(range(4), mixed_stream(0, 64, SYNTHETIC_ONLY, pair_prob=0.0))]
    seen = []
    original = step_module.PromptBatch.from_clicks
    monkeypatch.setattr(step_module.PromptBatch, "from_clicks",
                        staticmethod(lambda lists, *a, **k: seen.append(lists) or original(lists, *a, **k)))

    def first_prompts(prob):
        seen.clear()
        settings = StepSettings(single_click_start_prob=prob, max_iter_clicks=0)
        training_step(trainer.model, samples, np.random.default_rng(3), settings)
        return seen[0]

    starts = first_prompts(1.0)
    assert [len(c) for c in starts] == [1, 1, 1, 1] and all(c[0][2] for c in starts)
    for sample, ((y, x, _),) in zip(samples, starts):
        # In the deep half of the object, by the evaluation protocol's own distance map.
        depth, _ = error_distances(sample.mask, np.zeros(sample.mask.shape, bool), sample.ignore, None)
        assert sample.mask[int(y), int(x)] and depth[int(y), int(x)] > depth.max() / 2
    assert sum(len(c) for c in first_prompts(0.0)) > 4  # off: the multi-point sampler


def test_exact_propagation_steps_get_no_corrective_click(tmp_path):
    from napari_ois.train.real_data import mixed_stream
    from napari_ois.train.step import StepSettings, training_step

    trainer = Trainer(config(1), tmp_path / "run", log=lambda _: None)
    stream = mixed_stream(0, 64, SYNTHETIC_ONLY, pair_prob=1.0, drop_ref_prob=0.0)
    samples = [s for _, s in zip(range(2), stream)]
    assert all(s.ref_mask is not None for s in samples)

    def clicks(exact):
        settings = StepSettings(zero_click_prob=1.0, max_iter_clicks=3, exact_propagation_steps=exact)
        return [training_step(trainer.model, samples, np.random.default_rng(seed), settings)["clicks"]
                for seed in range(6)]

    # Without it the iterative rounds add clicks to zero-click pairs; with it they stay
    # pure propagation steps, as at inference.
    assert max(clicks(False)) > 0 and max(clicks(True)) == 0


def test_a_resumed_run_remembers_the_best_validation(tmp_path, monkeypatch):
    import napari_ois.train.trainer as trainer_module
    from napari_ois.model.checkpoint import read_checkpoint

    scores = [0.5, 0.7, KeyboardInterrupt, 0.6]  # the first run is killed while validating step 3

    def fake_validate(model, items, clicks):
        score = scores.pop(0)
        if score is KeyboardInterrupt:
            raise KeyboardInterrupt
        return {"miou_at_5": score}

    monkeypatch.setattr(trainer_module, "validation_items", lambda cfg: ["held-out"])
    monkeypatch.setattr(trainer_module, "validate", fake_validate)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Trainer(config(3, validate_every=1), run, log=lambda _: None).run()
    resumed = Trainer(config(3, validate_every=1), run, log=lambda _: None)
    assert resumed.step == 2 and resumed.best == 0.7
    resumed.run()  # step 3 validates at 0.6: best.pt must stay the step-2 checkpoint
    assert read_checkpoint(run / "best.pt")["metadata"]["steps"] == 2


def test_data_parallel_workers_share_one_model_and_resume(tmp_path):
    from napari_ois.train.parallel import run_parallel

    run = tmp_path / "parallel"
    cfg = config(4, workers=2, keep_every=2)
    run_parallel(cfg, run, max_steps=3)  # "killed" after 3 of 4 steps
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    # Both workers' batches count: 2 workers x 2 samples a step.
    assert [r["samples"] for r in steps] == [4, 8, 12]
    assert records[-1] == {"step": 3, "workers": 2, "weights_in_sync": True}
    assert (run / "step_000002.pt").is_file() and not (run / "step_000004.pt").exists()
    run_parallel(cfg, run)  # resumes at step 3 from last.pt / state.pt
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert records[-1] == {"step": 4, "workers": 2, "weights_in_sync": True}
    assert (run / "step_000004.pt").is_file()
    assert not list(run.glob(".rendezvous-*"))
    from napari_ois.model.checkpoint import load_model

    meta = load_model(run / "last.pt").metadata
    assert meta["steps"] == 4 and meta["samples_seen"] == 16 and meta["train_config"]["workers"] == 2
    assert meta["hardware"].endswith("2 data-parallel workers")
    # Resumed by one worker: the stream goes on after the 16 samples the two workers drew.
    single = Trainer(config(5), run, log=lambda _: None)
    assert (single.step, single.samples) == (4, 16)
    single.run()
    assert load_model(run / "last.pt").metadata["samples_seen"] == 18


def test_data_parallel_workers_draw_the_same_click_rounds_each_step(tmp_path):
    workers = [Trainer(config(1, workers=2), tmp_path / str(rank), log=lambda _: None, rank=rank, world=2)
               for rank in (0, 1)]
    rounds = []
    for step in range(40):
        for trainer in workers:
            trainer.step = step
        drawn = [trainer._shared_click_rounds() for trainer in workers]
        assert drawn[0] == drawn[1]  # no worker waits for another's extra prior passes
        rounds.append(drawn[0])
    assert set(rounds) == {0, 1, 2, 3}  # still uniform over steps (max_iter_clicks = 3)
    assert Trainer(config(1), tmp_path / "plain", log=lambda _: None)._shared_click_rounds() is None
