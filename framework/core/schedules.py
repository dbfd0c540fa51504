"""Learning-rate schedules: ``train.lr_schedule`` -> the fraction of the base lr at a point of the run."""

import math


def _cosine(progress):
    return 0.5 * (1 + math.cos(math.pi * progress))


def _flat_cosine(progress, flat=0.75):
    """The full lr for 75% of the steps, then cosine decay to 0 (fastai's fit_flat_cos)."""
    return 1.0 if progress < flat else _cosine((progress - flat) / (1 - flat))


#: name -> f(progress in [0, 1)) -> factor; None: the lr stays as the optimizer has it.
SCHEDULES = {"constant": None, "cosine": _cosine, "flat_cosine": _flat_cosine}
