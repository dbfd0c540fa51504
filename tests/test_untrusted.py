"""Describing an exception or object from a plugin: one bounded line, whatever it does."""

import pytest

from framework.safeio.untrusted import LIMIT, clip, describe_exception, describe_object, origin

pytestmark = pytest.mark.hostile


class StrRaises(Exception):
    def __str__(self):
        raise RuntimeError("no")


class NameRaises(type):
    @property
    def __name__(cls):
        raise RuntimeError("no name")


class Odd(BaseException, metaclass=NameRaises):
    pass


def exponential(depth=100):
    t = ()
    for _ in range(depth):
        t = (t, t)
    return t


def test_plain_messages_read_as_python_prints_them():
    assert describe_exception(ValueError("bad  value\nhere")) == "ValueError: bad value here"
    assert describe_exception(FileNotFoundError(2, "No such file", "w.pkl")) == (
        "FileNotFoundError: [Errno 2] No such file: 'w.pkl'"
    )
    assert describe_exception(RuntimeError()) == "RuntimeError"


def test_a_str_that_raises_is_survived():
    assert describe_exception(StrRaises("x")) == "StrRaises: (its __str__ raised an exception)"


def test_values_that_are_not_plain_are_never_repr_d():
    # repr of this tuple would take 2**100 steps; str() of the exception too.
    assert describe_exception(ValueError(exponential())) == "ValueError: <tuple object>"
    assert describe_exception(KeyError(exponential(), 3)) == "KeyError: <tuple object>, 3"
    assert describe_exception(OSError(2, "gone", exponential())) == "FileNotFoundError: 2, 'gone'"
    assert describe_object(exponential()) == "<tuple object>"


def test_huge_messages_are_cut():
    text = describe_exception(ValueError("x" * 10_000_000))
    assert len(text) == LIMIT and text.endswith("...")
    assert len(describe_exception(ValueError(10**5000))) <= LIMIT  # beyond int's str() limit: no error


def test_a_metaclass_cannot_hide_or_fake_the_class_name():
    assert describe_exception(Odd("o")) == "Odd: o"
    assert describe_object(Odd).endswith(".Odd'>")


def test_fw_errors_read_without_their_type():
    from framework import FwError

    assert describe_exception(FwError("model.sizes: wrong"), prefix=False) == "model.sizes: wrong"


def test_clip():
    assert clip("a\n\tb  c") == "a b c"
    assert clip("y" * 50, 10) == "yyyyyyy..."


def test_origin_names_the_innermost_frame_outside_the_standard_library():
    import json

    def plugin_code():
        json.loads("{")  # raises inside json, which is skipped

    try:
        plugin_code()
    except ValueError as e:
        where = origin(e)
    assert where.startswith("in test_untrusted.test_origin_names_the_innermost_frame_outside_the_standard_library.")
    assert "plugin_code (" in where and __file__ in where
