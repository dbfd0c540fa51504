"""A plugin that misbehaves as $FW_TEST_HOSTILE says: ``WHEN:WHAT``.

WHEN is ``import`` (at import) or ``hook`` (inside register_activations).
WHAT is one of:

- ``exit``: ``sys.exit(0)`` (a run that must not import it, ends without output if it does)
- ``str_raises``: an exception whose ``__str__`` and ``__repr__`` raise
- ``huge``: an exception whose ``__str__`` returns 50 MB
- ``exponential``: ValueError of a tuple nested 100 deep, each level holding the
  previous twice (its repr would take 2**100 steps)

Without $FW_TEST_HOSTILE it is a well-behaved plugin.
"""

import os
import sys

import numpy as np

from framework import Activation, hookimpl

WHEN, _, WHAT = os.environ.get("FW_TEST_HOSTILE", "").partition(":")


class StrRaises(Exception):
    def __str__(self):
        raise RuntimeError("__str__ refuses")

    def __repr__(self):
        raise RuntimeError("__repr__ refuses")


class Huge(Exception):
    def __str__(self):
        return "x" * 50_000_000


def exponential():
    t = ()
    for _ in range(100):
        t = (t, t)
    return t


def misbehave():
    if WHAT == "exit":
        sys.exit(0)
    if WHAT == "str_raises":
        raise StrRaises()
    if WHAT == "huge":
        raise Huge()
    if WHAT == "exponential":
        raise ValueError(exponential())


class Fine(Activation):
    name = "hostile_ok"

    def forward(self, x):
        return np.tanh(x)


if WHEN == "import":
    misbehave()


@hookimpl
def register_activations(register):
    if WHEN == "hook":
        misbehave()
    register(Fine)
