"""Argument checks worded the way Keras words them."""


def check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        expected = "None or a positive integer" if allow_none else "a positive integer"
        raise ValueError(f"Argument `{name}` must be {expected}. Received: {name}={value!r}")
