"""Dataset readers shared by evaluation and training (one place, no circle between them).

- :mod:`.layouts`: file layouts, ``InstanceItem``, mask reading;
- :mod:`.object_sets`: object sets (folders of image/mask pairs, COCO json) for training
  and ``eval clicks --format coco_json``;
- :mod:`.loaders`: the evaluation sets: click items and propagation sequences.
"""
