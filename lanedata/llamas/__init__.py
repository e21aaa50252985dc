"""LLAMAS: label reading and the official segmentation mAP (:mod:`.metric`, command :mod:`.evaluate`),
the converter to the CULane layout (:mod:`.convert`), the prediction writer (:mod:`.predict`) and
the synthetic LLAMAS-style generator (:mod:`.synthetic`)."""
