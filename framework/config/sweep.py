"""The ``sweep:`` section that ``fw sweep`` searches: checked with the rest of the config.

::

    sweep:
      metric: val_accuracy          # ...accuracy is maximised, ...loss minimised
      trials: 20
      sampler: tpe                  # tpe, random or grid
      pruner: median                # median or none
      params:
        train.optimizer.lr: {low: 1.0e-4, high: 1.0e-1, log: true}
        model.layers[0].units: [64, 128, 256]      # a list: categorical
"""

from dataclasses import dataclass

from ..core.callback import mode_of
from ..errors import FwError

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")


@dataclass(frozen=True)
class Param:
    """One searched config key: a range (``low``, ``high``, ``log``) or a list of ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None

    @property
    def integer(self) -> bool:
        """A range of whole numbers (``{low: 32, high: 256}``) is searched as integers."""
        return self.choices is None and all(
            isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high)
        )

    def ends(self) -> tuple:
        """The values that bound the search: what ``fw sweep`` tries on the config before any trial."""
        return self.choices if self.choices is not None else (self.low, self.high)


def check_sweep(check, s):
    """``check`` is validate's checker; ``s`` the plain ``sweep`` mapping, its keys' types already checked (schema)."""
    for key, spec in s["params"].items():
        try:
            param(key, spec)
        except ValueError as e:
            raise FwError(f"{check.source_of('sweep.params')}: sweep.params['{key}'] {e}") from None
        if s["sampler"] == "grid" and not isinstance(spec, list):
            raise FwError(
                f"{check.source_of('sweep.sampler')}: sweep.sampler=grid tries every combination of lists, but "
                f"sweep.params['{key}'] is a range; give it as a list of values, or use sampler tpe or random"
            )


def param(key, spec) -> Param:
    """``Param`` for one entry of ``sweep.params``; a ValueError says what the entry must be."""
    if isinstance(spec, list):
        if not spec or not all(v is None or isinstance(v, (bool, int, float, str)) for v in spec):
            raise ValueError(f"must be a non-empty list of plain values (numbers, strings, true/false), got {spec!r}")
        return Param(key, choices=tuple(spec))
    if not isinstance(spec, dict) or set(spec) - {"low", "high", "log"} or not {"low", "high"} <= set(spec):
        raise ValueError(f"must be a range {{low: ..., high: ..., log: true}} or a list of values, got {spec!r}")
    low, high, log = spec["low"], spec["high"], spec.get("log", False)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or not low < high:
        raise ValueError(f"needs numbers low < high, got low={low!r}, high={high!r}")
    if not isinstance(log, bool):
        raise ValueError(f"log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ValueError(f"with log: true needs low > 0, got {low!r}")
    return Param(key, low, high, log)


def params(cfg) -> list[Param]:
    from omegaconf import OmegaConf

    return [param(k, v) for k, v in OmegaConf.to_container(cfg.sweep.params).items()]


def direction(metric) -> str:
    """``maximize`` or ``minimize``: what the metric's name says (Optuna's words)."""
    return "maximize" if mode_of(metric) == "max" else "minimize"
