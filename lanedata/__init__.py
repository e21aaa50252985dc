"""Torch-free lane datasets: each benchmark's formats, converter to the CULane layout, official
metric and prediction writer in one folder, the label drawing converters share, and the synthetic
generators. See docs/architecture.md.

- :mod:`lanedata.labels`: CULane ``.lines.txt`` -> label maps (``make_labels``), lane IDs;
- :mod:`lanedata.synthetic`: the synthetic CULane generator (scene, render, dataset, video);
- :mod:`lanedata.tusimple`, :mod:`lanedata.llamas`, :mod:`lanedata.apolloscape`: one benchmark each.

Imports :mod:`runtime` (the CULane layout, plumbing) and itself; never torch, never ``training``.
"""
