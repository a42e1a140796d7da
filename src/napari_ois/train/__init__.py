"""Training data for the OIS model: samples, synthetic scenes, real-data loaders, clicks, losses.

- :mod:`.samples` -- :class:`~.samples.TrainingSample` and the model's input geometry
  (longest side resized, top-left placement, zero padding), shared with inference.
- :mod:`.synthetic` / :mod:`.synthetic_cells` -- procedural natural-like scenes (exact
  depth order and occlusion, two-frame motion) and microscopy scenes.
- :mod:`.real_data` -- COCO object masks and CTC cell frames with augmentation, and
  :func:`~.real_data.mixed_stream`, the seeded endless stream the trainer consumes.
- :mod:`.click_sampler` -- initial multi-point clicks and iterative error clicks.
- :mod:`.losses` -- normalized focal loss and a scale-and-shift-invariant depth loss.
- :mod:`.augment` -- warps, elastic flows, photometric jitter, reference-mask degradation.
"""
