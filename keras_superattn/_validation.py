"""Argument checks worded the way Keras words them."""

import argparse
import numbers


def check_positive_int(name, value, allow_none=False):
    """Returns `value` as a Python int (None if allowed), or raises naming `name`.

    NumPy integers are accepted; booleans and floats are not.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        expected = "None or a positive integer" if allow_none else "a positive integer"
        raise ValueError(f"Argument `{name}` must be {expected}. Received: {name}={value!r}")
    return int(value)


def check_rate(name, value):
    """Returns a rate in `[0, 1)` as a Python float, or raises naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"Argument `{name}` must be a float in [0, 1). Received: {name}={value!r}")
    return float(value)


def positive_int_argument(text):
    """argparse type: a positive integer, else a usage error before any work."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value
