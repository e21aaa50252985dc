"""TuSimple: the official LaneEval metric (:mod:`.metric`, command :mod:`.evaluate`), the converter
to the CULane layout (:mod:`.convert`) and the submission writer (:mod:`.predict`)."""
