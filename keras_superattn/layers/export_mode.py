"""The one switch between the layers' Keras forms and the forms a converter traces.

`deploy` traces a model inside `exporting()`; the layers read `current()`
when they are called. The mode lives in a context variable, so it holds for
the code traced inside the `with` block (and its thread) and nowhere else:
no layer is marked from outside and nothing stays switched on after an
error.
"""

import contextlib
import contextvars
import dataclasses


@dataclasses.dataclass(frozen=True)
class ExportMode:
    """How the layers trace.

    Attributes:
        tflite: trace the forms a TFLite file needs where those differ from
            the fastest in Keras: Super's `W_A X` as a FULLY_CONNECTED, and
            masked scores floored under the top allowed score, as int8 needs.
        cache_returns_entries: an attention layer called with a cache and a
            `cache_update_index` returns the new tokens' cache entries in
            place of the updated cache; the caller writes them. TFLite's
            integer kernels have no dynamic update of a slice.
    """

    tflite: bool = False
    cache_returns_entries: bool = False


KERAS_FORMS = ExportMode()
_MODE = contextvars.ContextVar("keras_superattn_export_mode", default=None)


def current():
    """The `ExportMode` in force: `KERAS_FORMS` outside `exporting()`."""
    return _MODE.get() or KERAS_FORMS


@contextlib.contextmanager
def exporting(cache_returns_entries=False):
    """Within this context the layers trace their TFLite forms (`ExportMode`)."""
    token = _MODE.set(ExportMode(tflite=True, cache_returns_entries=cache_returns_entries))
    try:
        yield
    finally:
        _MODE.reset(token)
