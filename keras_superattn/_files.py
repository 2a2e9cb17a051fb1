"""Every file the package writes is written whole or not at all.

Each writer puts its file under a temporary name beside the target and
renames it onto the target once it is complete (and, for a `.tflite` file,
checked), so an interrupted run, a failed check or a full disk leaves the
old file or none, never a partial one.
"""

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path, suffix=".part"):
    """Yields a temporary path beside `path`; moves it onto `path` when the
    block ends without error and removes it otherwise. The folder is made if
    missing; the file gets the permissions `open()` would give it.

    Args:
        path: the file to write.
        suffix: the temporary name's ending, for writers that insist on one
            (`model.save` wants `.keras`).
    """
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=suffix)
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_umask())
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_bytes_atomically(data, path):
    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        f.write(data)


def write_text_atomically(text, path):
    with atomic_path(path) as temporary, open(temporary, "w") as f:
        f.write(text)


def write_json_atomically(value, path, indent=2):
    write_text_atomically(json.dumps(value, indent=indent), path)


def save_model_atomically(model, path):
    """`model.save(path)`, whole or not at all."""
    with atomic_path(path, suffix=".partial.keras") as temporary:
        model.save(temporary)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
