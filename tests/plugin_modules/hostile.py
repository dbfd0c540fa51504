"""A plugin that misbehaves as $FW_TEST_HOSTILE says: ``WHEN:WHAT``.

WHEN is ``import`` (at import) or ``hook`` (inside register_activations).
WHAT is one of:

- ``exit``: ``sys.exit(0)``
- ``str_raises``: an exception whose ``__str__`` and ``__repr__`` raise
- ``huge``: an exception whose ``__str__`` returns 50 MB
- ``loops``: an exception whose ``__str__`` never returns
- ``exponential``: ValueError of a tuple nested 100 deep, each level holding the
  previous twice (its repr would take 2**100 steps)
- ``base``: an exception derived from BaseException, not Exception
- ``hang``: sleeps $FW_TEST_HANG_SECONDS, then loads normally (registers ``hostile_ok``)

Without $FW_TEST_HOSTILE it is a well-behaved plugin.
"""

import os
import sys
import time

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


class Loops(Exception):
    def __str__(self):
        while True:
            pass


class Weird(BaseException):
    pass


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
    if WHAT == "loops":
        raise Loops()
    if WHAT == "exponential":
        raise ValueError(exponential())
    if WHAT == "base":
        raise Weird("not an Exception")
    if WHAT == "hang":
        time.sleep(float(os.environ["FW_TEST_HANG_SECONDS"]))


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
