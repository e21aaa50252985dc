"""Synthetic CULane: road scenes rendered with numpy + OpenCV, written in the CULane layout.

``python -m lanedata.synthetic --out data/culane-synth --train N --val N --test-per-category N --seed S [--video PATH --frames N]``

- :mod:`.geometry`: camera over a flat road, road centre line (clothoid or sampled);
- :mod:`.rig`: the dashcam rig (hood, margins, overlay, lens);
- :mod:`.roadside` (the model and its sampling), :mod:`.roadside_draw`, :mod:`.vehicles`, :mod:`.surface`,
  :mod:`.textures`: what stands beside and on the road;
- :mod:`.scene`: what a frame holds, and one random sampler per CULane test category;
- :mod:`.render`: scene -> image, CULane annotation points, label map;
- :mod:`.dataset`: the CULane layout on disk (images, lines, labels, lists, manifest);
- :mod:`.video`: a continuous drive as MP4 with per-frame ground truth;
- :mod:`.versions`: each generator's output version (the LLAMAS- and ApolloScape-style generators
  live with their benchmark: :mod:`lanedata.llamas.synthetic`, :mod:`lanedata.apolloscape.synthetic`).

No torch is imported here.
"""
