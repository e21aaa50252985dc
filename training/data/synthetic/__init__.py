"""Synthetic CULane: road scenes rendered with numpy + OpenCV, written in the CULane layout.

``python -m training.data.synthetic --out data/culane-synth --train N --val N --test-per-category N --seed S [--video PATH --frames N]``

- :mod:`.geometry`: camera over a flat road, road centre line (clothoid or sampled);
- :mod:`.scene`: what a frame holds, and one random sampler per CULane test category;
- :mod:`.render`: scene -> image, CULane annotation points, label map;
- :mod:`.dataset`: the CULane layout on disk (images, lines, labels, lists, manifest);
- :mod:`.video`: a continuous drive as MP4 with per-frame ground truth.

No torch is imported here.
"""
