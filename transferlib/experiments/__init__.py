"""Experiments behind the book's chapters: one shared layer and one small module per paper.

The shared layer, used by every chapter:

* :mod:`~transferlib.experiments.presets` -- typed presets (:class:`DataSpec`,
  :class:`TrainingSpec`, :func:`scaled`), the one Glyphs set per scale, named random streams;
* :mod:`~transferlib.experiments.sources` -- the run's dataset, trained and packaged networks with
  their majority baselines, and their cached outputs;
* :mod:`~transferlib.experiments.protocols` -- head re-training, fine-tuning, from-scratch
  references;
* :mod:`~transferlib.experiments.scoring` -- any subset of the score registry on one source;
* :mod:`~transferlib.experiments.sweep` -- result stores keyed by code version, and the resumable
  sweep that runs on any :class:`concurrent.futures.Executor`;
* :mod:`~transferlib.experiments.claims` -- verdicts on a paper's claims by stated rules.

Chapter modules (:mod:`~transferlib.experiments.nce`, ...) hold a preset, task makers and
``run_*`` functions that return tidy tables. They are imported on demand (``from
transferlib.experiments import nce``), so a change to one chapter never touches another's cache.
"""
