"""``fw sweep``: a hyperparameter search on Optuna (the ``sweep`` extra, imported only here).

The study lives in an Optuna storage: a SQLite file beside the weights by
default, or any RDB URL (PostgreSQL, MySQL), so several commands, on one
machine or many, add trials to one study. Each trial is an ``fw train`` of
the config with the trial's overrides, in its own folder with its own run
record; it reports every epoch's value to Optuna, so the pruner can stop it.
"""

import sys

HELP = """\
Search the config's `sweep:` section with Optuna: run trials, each an
fw train with the trial's values, and keep the study in a database so
later commands (or other machines) add to it. At the end, print the study's
trials best first and write best.yaml, a complete config of the best trial
that `fw train best.yaml` trains again to the same result.

  sweep:
    metric: val_accuracy        # ...accuracy is maximised, ...loss minimised
    trials: 20                  # per command; --trials overrides it
    sampler: tpe                # tpe, random or grid; seeded from train.seed
    pruner: median              # median or none
    params:
      train.optimizer.lr: {low: 1.0e-4, high: 1.0e-1, log: true}
      model.layers[0].units: [64, 128, 256]    # a list: categorical

Each trial trains in WEIGHTS_FOLDER/STUDY/trial_N/ (weights and their run
record: NAME.config.yaml, NAME.metrics.jsonl). A trial that diverges is
recorded as failed and the sweep goes on.

examples:
  fw sweep fashion_sweep
  fw sweep my.yaml train.epochs=3 dataset.limit=5000  # overrides, as for fw train
  fw sweep fashion_sweep --trials 10 --jobs 2       # 10 more trials, 2 at a time
  fw sweep my.yaml --storage postgresql://fw:secret@db.example/fw --study lr-search
  fw sweep fashion_sweep --json

Needs Optuna: pip install optuna (or pip install -e '.[sweep]' in a clone)."""


def add_parser(sub, debug):
    import argparse

    p = sub.add_parser(
        "sweep",
        parents=[debug],
        help="search hyperparameters with Optuna (the config's sweep: section)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "config", metavar="CONFIG", help="a YAML config with a sweep: section (a path, or a bundled config's name)"
    )
    p.add_argument(
        "overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides, as for fw train: every trial has them, the study's fingerprint and best.yaml too",
    )
    p.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="trials this command runs, added to those the study holds (default: sweep.trials)",
    )
    p.add_argument(
        "--jobs", type=int, default=1, metavar="J", help="trials at once, each in its own process (default 1)"
    )
    p.add_argument(
        "--storage",
        metavar="URL",
        help="an Optuna storage URL, e.g. postgresql://user:password@host/db to share the study between machines "
        "(default: sqlite:///WEIGHTS_FOLDER/sweep.db)",
    )
    p.add_argument(
        "--study", metavar="NAME", help="the study's name, also its trials' folder (default: the config's file name)"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object at the end: best_value, best_params, best_config, trials",
    )
    p.set_defaults(func=sweep)


def sweep(args):
    import time

    from ..errors import FwError
    from ..training.sweep import Plan, finish, run_workers

    optuna = _optuna()
    if args.trials is not None and args.trials < 1:
        raise FwError(f"--trials must be at least 1, got {args.trials}")
    if args.jobs < 1:
        raise FwError(f"--jobs must be at least 1, got {args.jobs}")
    plan = Plan.make(args.config, args.overrides, args.storage, args.study)
    plan.check()
    study = plan.open_study(optuna)
    n = args.trials or plan.cfg.sweep.trials
    jobs = min(args.jobs, n)
    before = len(study.get_trials(deepcopy=False))
    print(
        f"fw sweep: study '{plan.study}' in {plan.shown_storage} ({before} trials so far): {n} more, {jobs} at a time; "
        f"{plan.metric} is {plan.direction}d",
        file=sys.stderr,
    )
    start = time.perf_counter()
    run_workers(plan, n, jobs)
    seconds = time.perf_counter() - start
    result, best_yaml = finish(plan, optuna)
    if args.json:
        import json

        print(json.dumps({k: result[k] for k in ("best_value", "best_params", "best_config", "trials")}, indent=2))
    else:
        print(result["table"])
    out = sys.stderr if args.json else sys.stdout
    print(f"{n} trials in {seconds:.1f} s; the study holds {len(result['trials'])}", file=out)
    print(
        f"Best: trial {result['best_number']}, {plan.metric} {result['best_value']:.4f}. Its config: {best_yaml}",
        file=out,
    )
    print(f"  fw train {best_yaml}", file=out)
    return 0


def _optuna():
    try:
        import optuna
    except ImportError as e:
        from ..errors import FwError

        raise FwError(
            "fw sweep needs Optuna; "
            "install it with `pip install optuna` (or `pip install -e '.[sweep]'` in a clone of fw)"
        ) from e
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # fw prints one line per trial itself
    return optuna
