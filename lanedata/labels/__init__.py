"""Label drawing shared by every converter: CULane ``.lines.txt`` -> per-pixel lane-ID label maps
(:mod:`.make_labels`), lane IDs from lane positions (:mod:`.lane_ids`), one lane's label stroke
(:mod:`.lane_label`)."""
