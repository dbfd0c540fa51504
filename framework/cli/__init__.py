"""The ``fw`` command line: parse, run the command, and turn any error into one line.

The parser and its help live in ``parser.py``, what each command does in
``commands.py``; they import the heavy parts (numpy, omegaconf, plugins) only
inside the commands, so --help is fast.
"""

import sys

from . import commands
from .parser import build_parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    # KEY=VALUE overrides may follow options too: `fw show CONFIG --count 5 dataset.split=train`.
    if (
        extra
        and isinstance(getattr(args, "overrides", None), list)
        and all("=" in e and not e.startswith("-") for e in extra)
    ):
        args.overrides = [*args.overrides, *extra]  # a new list: the default [] is shared
    elif extra:
        # The subcommand's own usage line, not the top-level one, says what it takes.
        parser.commands.get(args.command, parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if not args.command:
        parser.print_help()
        return 2
    from ..errors import FwError
    from ..safeio.untrusted import describe_exception, origin

    commands.route_warnings(getattr(args, "debug", False))
    _terminate_like_interrupt()
    try:
        return args.func(args)
    except FwError as e:
        if args.debug:
            raise
        print(f"fw: error: {describe_exception(e, ERROR_LIMIT, prefix=False)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print("fw: terminated" if isinstance(e, Terminated) else "fw: interrupted", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except BrokenPipeError:
        # `fw plugins | head`: the reader has gone. Point stdout at devnull so the
        # interpreter's final flush stays quiet too (the recipe in Python's docs).
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:  # an error fw did not word itself: one line, saying where it came from
        if args.debug:
            raise
        text = describe_exception(e, ERROR_LIMIT)
        print(f"fw: error: {text} ({origin(e)}; rerun with --debug for the traceback)", file=sys.stderr)
        return 1


#: Longest error line: a message quoting a huge value is cut, not printed in megabytes.
ERROR_LIMIT = 2000


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so cleanup (``finally``) runs as on Ctrl-C."""


def _terminate_like_interrupt():
    """Handle SIGTERM (``timeout``, job schedulers) like SIGINT: no half-written files are left."""
    import signal
    import threading

    def handler(signum, frame):
        raise Terminated

    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        signal.signal(signal.SIGTERM, handler)


def console():
    """The ``fw`` command: ``main``, then exit without a last collection of fw's objects.

    ``gc.freeze()`` hands every object alive at the end to the interpreter's
    exit as permanent, so it skips the cyclic garbage collection over them
    (omegaconf's config, numpy, the plugins; docs/performance.md has what it
    saves). Only the command does this; ``main`` called from Python leaves the
    caller's garbage collector alone.
    """
    import gc

    code = main()
    gc.freeze()
    sys.exit(code)
