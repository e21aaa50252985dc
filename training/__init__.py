"""Training: models, datasets, distillation losses, trainer, experiments (torch).

Torch-free dataset code (formats, converters, the synthetic generator) lives in :mod:`lanedata`.
"""
