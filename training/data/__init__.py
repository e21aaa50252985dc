"""Datasets for training: the synthetic CULane generator and (later) torch datasets."""
