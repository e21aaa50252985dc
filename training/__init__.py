"""Training: models, datasets, distillation losses, trainer, experiments (torch).

Submodules that do not need torch (``training.data.synthetic``) do not import it.
"""
