"""Torch datasets: CULane-layout samples, augmentation and label inputs for the trainer (the
formats, converters and generators are torch-free and live in :mod:`lanedata`)."""
