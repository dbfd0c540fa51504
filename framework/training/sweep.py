"""The machinery of ``fw sweep``: an Optuna study of ``fw train`` trials (Optuna is imported by the caller first).

- ``Plan``: the config and its overrides, its ``sweep:`` section, the storage and the study's name.
- ``run_workers``: N trials, J at a time in separate processes on one storage.
- ``objective``: one trial, an ``fw train`` with the trial's overrides in its
  own folder, reporting each epoch's value so the pruner can stop it.
- ``summary`` and ``write_best``: the trials best first, and ``best.yaml``.
"""

import json
import math
import re
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..config import load_config
from ..config.sweep import direction, params
from ..core.callback import Callback
from ..errors import FwError, FwWarning
from ..safeio.untrusted import describe_exception
from .sweep_storage import checked_url, creation_lock, database_problem, engine_kwargs, shown

#: A trial whose process died (kill -9, a lost machine) is failed this long after its last heartbeat.
HEARTBEAT_SECONDS, GRACE_SECONDS = 30, 120


@dataclass
class Plan:
    config: str  # as given: a path or a bundled name (each worker process loads it again)
    overrides: list  # KEY=VALUE, as given: every trial's config is the config with these, then its own values
    cfg: object
    storage: str  # a checked URL, its PostgreSQL driver named
    study: str

    @classmethod
    def make(cls, config, overrides=(), storage=None, study=None):
        from ..config.loading import find_config

        overrides = list(overrides)
        cfg = load_config(config, overrides)
        if not cfg.sweep.params:
            raise FwError(
                f"{config}: sweep.params is empty, so there is nothing to search; add e.g. "
                "train.optimizer.lr: {low: 1.0e-4, high: 1.0e-1, log: true}"
            )
        if cfg.sweep.metric.startswith("val_") and not cfg.train.validation_fraction:
            raise FwError(
                f"{config}: sweep.metric={cfg.sweep.metric} needs a validation split; set train.validation_fraction "
                "(e.g. 0.1): choosing by test_accuracy would choose on the test set"
            )
        storage = checked_url(storage or f"sqlite:///{Path(cfg.weights.path).parent / 'sweep.db'}")
        return cls(
            config, overrides, cfg, storage, study_name(study if study is not None else find_config(config)[0].stem)
        )

    @property
    def shown_storage(self):
        return shown(self.storage)

    @property
    def metric(self):
        return self.cfg.sweep.metric

    @property
    def direction(self):
        return direction(self.metric)

    @property
    def params(self):
        return params(self.cfg)

    @property
    def folder(self) -> Path:
        """Where the trials train: ``WEIGHTS_FOLDER/STUDY/trial_N/``; ``best.yaml`` is here too."""
        return Path(self.cfg.weights.path).parent / self.study

    def check(self):
        """Before any trial: every ``sweep.params`` key,
        at each end of its range (or each choice), makes a valid config."""
        from ..config.assemble import check_names
        from ..plugin_system.manager import get_registry
        from ..safeio.files import ensure_writable_dir

        for p in self.params:
            for value in p.ends():
                item = f"{p.key}={override_value(value)}"
                try:
                    cfg = load_config(self.config, [*self.overrides, item])
                    check_names(cfg, get_registry(cfg.plugins))
                except FwError as e:
                    text = str(e).removeprefix(f"override '{item}': ")
                    raise FwError(f"{self.config}: sweep.params['{p.key}'] = {value!r}: {text}") from e
        ensure_writable_dir(self.folder, purpose="for fw sweep's trials")
        best = self.folder / "best.yaml"
        if best.is_file() and not best.read_bytes().startswith(BEST_MARK.encode()):
            raise FwError(
                f"{best} exists and fw sweep did not write it; fw replaces no file it did not write: "
                "move it, or choose another --study"
            )

    def fingerprint(self) -> dict:
        """What a study's trials must agree on, overrides included: not where the data or the weights are,
        which differs by machine. A data file or folder (``dataset.path``, ``..._path``) counts by its name."""
        from omegaconf import OmegaConf

        from ..config.schema import dataset_path_key

        c = OmegaConf.to_container(self.cfg)
        c["dataset"].pop("root", None)  # a built-in dataset's folder: its name says what it holds
        for key, value in c["dataset"].items():
            if dataset_path_key(key) and isinstance(value, str):
                c["dataset"][key] = Path(value).name
        for entry in c["train"]["callbacks"]:
            if isinstance(entry, dict):
                entry.pop("path", None)
        return {
            "dataset": c["dataset"],
            "model": c["model"],
            "train": c["train"],
            "metric": self.metric,
            "params": c["sweep"]["params"],
        }

    def open_study(self, optuna, locked=False):
        """The study, made on first use; one made for another config or direction is refused."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with creation_lock(None if locked else self.storage):
                study = optuna.create_study(
                    study_name=self.study,
                    storage=storage(optuna, self.storage),
                    direction=self.direction,
                    sampler=make_sampler(optuna, self),
                    pruner=make_pruner(optuna, self.cfg.sweep.pruner),
                    load_if_exists=True,
                )
                mine = json.dumps(self.fingerprint(), sort_keys=True)
                saved = study.user_attrs.get("fw_config")
                if saved is None:
                    study.set_user_attr("fw_config", mine)
        except SQLAlchemyError as e:
            raise FwError(f"--storage {self.shown_storage}: {database_problem(e, self.storage)}") from e
        except (ValueError, RuntimeError) as e:
            raise FwError(f"--storage {self.shown_storage}: {describe_exception(e, 300)}") from e
        if saved is not None and saved != mine:
            changed = ", ".join(_changed_keys(json.loads(saved), json.loads(mine))[:5])
            raise FwError(
                f"study '{self.study}' in {self.shown_storage} holds trials of another config ({changed} differ); "
                "restore that config, or give this search its own --study NAME"
            )
        if study.direction.name.lower() != self.direction:
            raise FwError(
                f"study '{self.study}' is set to {study.direction.name.lower()}, "
                f"but {self.metric} is {self.direction}d; use another --study"
            )
        return study


def study_name(name) -> str:
    """``--study NAME`` is a name, not a path: the trials train in ``WEIGHTS_FOLDER/NAME/``, never elsewhere."""
    if not re.fullmatch(r"[^/\\\x00-\x1f\x7f]{1,200}", name) or name in (".", ".."):
        raise FwError(
            f"--study {name!r}: a study's name is a name, not a path (its trials train in WEIGHTS_FOLDER/NAME/); "
            "give one of up to 200 characters without /, \\ or control characters, e.g. --study lr-search"
        )
    return name


def storage(optuna, url):
    """Optuna's RDB storage (``sweep_storage.engine_kwargs``); heartbeats fail the trials of a killed process."""
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", optuna.exceptions.ExperimentalWarning
        )  # heartbeats: experimental since Optuna 2.9
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs(url), heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
        )


def _changed_keys(a, b, prefix=""):
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _changed_keys(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}")
    return out


def make_sampler(optuna, plan):
    """The config's sampler, made again for each trial with a seed from ``train.seed`` and the trial's number.

    One process running a study alone draws the same trials every time, and
    parallel processes (``--jobs``, other machines) never repeat each other's
    draws, as one shared seed would make them do.
    """
    import numpy as np

    name, seed, space = plan.cfg.sweep.sampler, plan.cfg.train.seed, plan.params

    def made(s):
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=s)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=s)
        return optuna.samplers.GridSampler({p.key: list(p.choices) for p in space}, seed=s)

    class PerTrialSeed(optuna.samplers.BaseSampler):
        def __init__(self):
            self.inner = made(seed)

        def before_trial(self, study, trial):
            self.inner = made(int(np.random.SeedSequence([seed, trial.number]).generate_state(1)[0]))
            self.inner.before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            return self.inner.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self.inner.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self.inner.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values):
            self.inner.after_trial(study, trial, state, values)

        def reseed_rng(self):
            self.inner.reseed_rng()

    return PerTrialSeed()


def make_pruner(optuna, name):
    return optuna.pruners.MedianPruner() if name == "median" else optuna.pruners.NopPruner()


def override_value(value) -> str:
    """A value as ``KEY=VALUE`` writes it: floats exactly (``repr``), true/false/null as YAML says them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


# -- running trials ----------------------------------------------------------------------


def run_workers(plan, n, jobs):
    """``n`` trials: in this process when ``jobs`` is 1, else ``jobs`` processes sharing them, on the same storage."""
    from ..plugin_system.manager import get_registry
    from .validation import load_training_data

    args = (plan.config, plan.overrides, plan.storage, plan.study)
    if jobs == 1:
        return run_trials(*args, n)
    load_training_data(
        plan.cfg, get_registry(plan.cfg.plugins)
    )  # fills the dataset cache once, before the workers read it
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork of a process holding database connections
    shares = [n // jobs + (i < n % jobs) for i in range(jobs)]
    workers = [context.Process(target=_worker, args=(*args, k)) for k in shares]
    for w in workers:
        w.start()
    try:
        for w in workers:
            w.join()
    except KeyboardInterrupt:
        for w in workers:
            w.terminate()  # SIGTERM: each marks its running trial failed, then exits
        for w in workers:
            w.join()
        raise
    failed = [w.exitcode for w in workers if w.exitcode]
    if failed:
        raise FwError(
            f"{len(failed)} of {jobs} trial processes stopped with an error (above); the study keeps what they finished"
        )


def _worker(config, overrides, storage_url, study, n):
    """A trial process: its trials, then exit; an error is one line on stderr and exit status 1."""
    import signal

    def terminated(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    try:
        run_trials(config, overrides, storage_url, study, n)
    except FwError as e:
        print(f"fw: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


def run_trials(config, overrides, storage_url, study, n):
    """Run ``n`` trials of the study in this process (the data is loaded once for all of them)."""
    import optuna

    from .trainer import Diverged

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    plan = Plan.make(config, overrides, storage_url, study)
    study = plan.open_study(optuna)
    cache = {}
    study.optimize(lambda trial: objective(trial, plan, cache), n_trials=n, catch=(Diverged,))


class _Report(Callback):
    """Each epoch's value to Optuna; stops the trial when the pruner says so."""

    name = "optuna_report"

    def __init__(self, trial, metric):
        self.trial, self.metric, self.pruned = trial, metric, None

    def on_epoch_end(self, epoch, logs):
        self.trial.report(logs[self.metric], epoch)
        if self.trial.should_prune():
            self.pruned = epoch
            return True
        return False


def objective(trial, plan, cache):
    """One trial: ``fw train`` with the trial's overrides,
    in ``plan.folder/trial_N``; its value at the weights' epoch."""
    import optuna

    from . import record
    from .trainer import Diverged, Trainer

    overrides = [f"{p.key}={override_value(suggest(trial, p))}" for p in plan.params]
    folder = plan.folder / f"trial_{trial.number}"
    weights = f"weights.path={folder / ('weights' + Path(plan.cfg.weights.path).suffix)}"
    trial.set_user_attr("overrides", overrides)
    trial.set_user_attr("run", str(folder))
    cfg = load_config(plan.config, [*plan.overrides, *overrides, weights])
    trainer, report = Trainer(cfg), _Report(trial, plan.metric)
    trainer.output.check(overwrite=True)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FwWarning)  # chance-level epochs: the trial's value says it
            trainer.fit(*_data(cfg, cache), callbacks=[report])
    except Diverged as e:
        _say(trial, f"failed: {e}", overrides)
        trial.set_user_attr("error", str(e))
        record.write(cfg, trainer.history, shlex.join([plan.config, *plan.overrides, *overrides, weights]))
        raise
    trainer.output.write(trainer.net)
    trainer.output.checkpoint_path.unlink(missing_ok=True)
    record.write(cfg, trainer.history, shlex.join([plan.config, *plan.overrides, *overrides, weights]))
    seconds = time.perf_counter() - start
    epoch = trainer.weights_epoch or trainer.history[-1].epoch
    value = trainer.history[epoch - 1].logs()[plan.metric]
    trial.set_user_attr("epochs", len(trainer.history))
    trial.set_user_attr("seconds", round(seconds, 2))
    if report.pruned:
        _say(trial, f"pruned after epoch {report.pruned} ({plan.metric} {value:.4f}), {seconds:.1f} s", overrides)
        raise optuna.TrialPruned()
    _say(trial, f"{plan.metric} {value:.4f} (epoch {epoch} of {len(trainer.history)}), {seconds:.1f} s", overrides)
    return value


def suggest(trial, p):
    if p.choices is not None:
        return trial.suggest_categorical(p.key, list(p.choices))
    if p.integer:
        return trial.suggest_int(p.key, p.low, p.high, log=p.log)
    return trial.suggest_float(p.key, float(p.low), float(p.high), log=p.log)


def _data(cfg, cache):
    """The training data for ``cfg``, loaded once per dataset section and reused by every trial of this process."""
    from omegaconf import OmegaConf

    from ..plugin_system.manager import get_registry
    from .validation import load_training_data

    key = json.dumps(OmegaConf.to_container(cfg.dataset), sort_keys=True)
    if key not in cache:
        cache.clear()
        (x, t), (xt, tt) = load_training_data(cfg, get_registry(cfg.plugins))
        cache[key] = (x, t, xt, tt)
    return cache[key]


def _say(trial, text, overrides):
    print(
        f"trial {trial.number}: {text}  [{', '.join(_short_override(o) for o in overrides)}]",
        file=sys.stderr,
        flush=True,
    )


def _short_override(item):
    key, value = item.split("=", 1)
    try:
        return f"{key}={float(value):.4g}" if "." in value or "e" in value else item
    except ValueError:
        return item


# -- the end: trials best first, best.yaml -------------------------------------------------


def summary(plan, study):
    """The study's trials, best first, as data and as a text table; the best trial's config."""
    import optuna

    states = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    sign = -1 if plan.direction == "maximize" else 1
    order = {states.COMPLETE: 0, states.PRUNED: 1, states.FAIL: 2}

    def rank(t):
        value = t.value if t.state == states.COMPLETE else _last(t)
        return (
            order.get(t.state, 3),
            sign * value if value is not None and math.isfinite(value) else math.inf,
            t.number,
        )

    rows = [_trial_row(t) for t in sorted(trials, key=rank)]
    complete = [t for t in trials if t.state == states.COMPLETE]
    if not complete:
        raise FwError(f"no trial of study '{plan.study}' has completed yet (see the lines above); nothing to write")
    best = min(complete, key=rank)  # from the same snapshot as the table: another process may finish a trial meanwhile
    cfg = load_config(plan.config, [*plan.overrides, *best.user_attrs.get("overrides", [])])
    return {
        "best_value": best.value,
        "best_params": best.params,
        "best_number": best.number,
        "best_config": _best_config(cfg, plan),
        "trials": rows,
        "table": _table(rows, plan),
    }


def _last(t):
    return t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None


def _trial_row(t):
    value = t.value if t.value is not None else _last(t)
    return {
        "number": t.number,
        "state": t.state.name.lower(),
        "value": value,
        "params": t.params,
        "epochs": t.user_attrs.get("epochs"),
        "seconds": t.user_attrs.get("seconds"),
        "run": t.user_attrs.get("run"),
    }


def _table(rows, plan):
    keys = list(dict.fromkeys(k for r in rows for k in r["params"]))
    head = ["trial", "state", plan.metric, "epochs", "seconds", *keys]
    body = []
    for r in rows:
        shown = "-" if r["value"] is None else f"{r['value']:.4f}"
        params = [_fmt(r["params"].get(k)) for k in keys]
        body.append([str(r["number"]), r["state"], shown, str(r["epochs"] or "-"), str(r["seconds"] or "-"), *params])
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in [head, *body])


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else "-" if v is None else str(v)


def _best_config(cfg, plan):
    """The best trial's config as plain data, without the sweep, training into ``best/`` beside best.yaml."""
    from omegaconf import OmegaConf

    c = OmegaConf.to_container(cfg)
    c.pop("sweep")
    c["weights"]["path"] = f"best/weights{Path(plan.cfg.weights.path).suffix}"
    return c


def finish(plan, optuna):
    """The summary and ``best.yaml``, read and written under the study's lock.

    Two commands on one study each write best.yaml when they end; the lock
    makes the last writer the one that read the study last, so the file
    names the study's best trial, not an earlier command's view of it.
    """
    with creation_lock(plan.storage):
        result = summary(plan, plan.open_study(optuna, locked=True))
        return result, write_best(plan, result)


BEST_MARK = "# The best trial of fw sweep "


def write_best(plan, result):
    """``best.yaml`` in the study's folder: ``fw train best.yaml`` trains the best trial again."""
    from omegaconf import OmegaConf

    from ..safeio.files import write_output

    path = plan.folder / "best.yaml"
    command = shlex.join([plan.config, *plan.overrides]).replace("\n", "\\n")  # a comment of one line
    header = (
        f"{BEST_MARK}{command} (study '{plan.study}'): trial {result['best_number']}, "
        f"{plan.metric} {result['best_value']}\n# Train it again: fw train {path}\n"
    )
    text = header + OmegaConf.to_yaml(OmegaConf.create(result["best_config"]))
    write_output(path, lambda f: f.write(text.encode()))
    return path
