"""Optimizer checkpoints: one ``.npz`` file, written atomically, read back with every check.

The file is an ordinary NumPy ``.npz`` (a zip of ``.npy`` members, no pickles), readable with
``np.load(path)``. Format version 2 holds:

================== =================================================================
key                value
================== =================================================================
``format_version`` int64 scalar, 2
``algorithm``      str scalar, ``"RMSProp"`` or ``"AdaGrad"``
``step``           int64 scalar, the optimizer's ``step_count``
``skipped_steps``  int64 scalar, steps skipped by ``nonfinite="skip"``
``hyperparams``    str scalar, a JSON object: the defaults (floats round-trip exactly)
``param_groups``   str scalar, a JSON list: each group's parameter indices, step count and
                   hyperparameters (a learning-rate schedule as ``null``)
``state.NAME.I``   the state buffer ``NAME`` (e.g. ``square_avg``) of parameter ``I``; absent
                   for the parameters of groups that do not keep ``NAME``
================== =================================================================

Version 1 (before parameter groups) is the same without ``param_groups``; it is still read,
as one group.

Writing goes to a temporary file in the destination's folder, which is flushed and fsync'ed,
then renamed over the destination (``os.replace``, atomic on POSIX and Windows), and the folder
is fsync'ed: a crash at any moment leaves either the old file or the new one, never a mix. A
killed writer can leave a stray ``.NAME.*.tmp`` file next to it, never a broken ``NAME``. Errors
are reported as writing straight to the destination would report them (``FileNotFoundError``,
``IsADirectoryError``, ``PermissionError``, ... naming the destination, not the temporary file).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile

import numpy as np

FORMAT_VERSION = 2
_SCALARS = ("format_version", "algorithm", "step", "skipped_steps", "hyperparams")
_GROUPS = "param_groups"  # JSON, from version 2 on

_UMASK = os.umask(0)  # read once, at import (os.umask can only be read by setting it)
os.umask(_UMASK)


def write(path, state_dict):
    """Write ``state_dict`` (from ``Optimizer.state_dict()``) to ``path`` atomically."""
    members = {
        "format_version": np.int64(FORMAT_VERSION),
        "algorithm": np.str_(state_dict["algorithm"]),
        "step": np.int64(state_dict["step"]),
        "skipped_steps": np.int64(state_dict.get("skipped_steps", 0)),
        "hyperparams": np.str_(json.dumps(state_dict["hyperparams"])),
        _GROUPS: np.str_(json.dumps(state_dict["param_groups"])),
    }
    for name, arrays in state_dict["state"].items():
        for i, a in enumerate(arrays):
            if a is not None:
                members[f"state.{name}.{i}"] = a
    path = os.fspath(path)
    if os.path.isdir(path):  # else the temporary file would land in the folder above
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                   dir=folder)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes it 0600; give it a normal file's mode
        with _open_temp(fd) as f:
            np.savez(f, **members)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            # Report it as open(path, "wb") would: about the user's path, never the temporary
            # file's name (OSError picks the subclass from errno: FileNotFoundError, ...).
            raise OSError(exc.errno, exc.strerror, path) from None
        raise
    _fsync_folder(folder)


def _open_temp(fd):
    """The temporary file's writer (a seam for the kill-during-save test)."""
    return os.fdopen(fd, "wb")


def _fsync_folder(folder):
    # Makes the rename itself durable; not possible on every platform (e.g. Windows).
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read(path, who):
    """Read a checkpoint into a ``state_dict`` (not yet checked against an optimizer).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for
    anything that is not an intact checkpoint of a known format version.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            # Reading every member checks every CRC: truncation or flipped bytes fail here.
            members = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, EOFError, ValueError, OSError, ...
        raise ValueError(
            f"{who}: {path!r} is not a readable rmsprop_nb checkpoint "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    missing = [k for k in _SCALARS if k not in members]
    if missing:
        raise ValueError(f"{who}: {path!r} is not an rmsprop_nb checkpoint (no {', '.join(missing)})")
    try:
        version = int(members["format_version"])
        scalars = {k: members[k].item() for k in _SCALARS}
        hyper = json.loads(scalars["hyperparams"])
        groups = json.loads(members[_GROUPS].item()) if _GROUPS in members else None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{who}: {path!r} has a malformed header ({exc})") from exc
    if version not in (1, FORMAT_VERSION):
        raise ValueError(
            f"{who}: {path!r} has checkpoint format version {version}; this rmsprop_nb reads "
            f"versions 1 to {FORMAT_VERSION}"
        )
    if (groups is None) != (version == 1):
        raise ValueError(f"{who}: {path!r} is a version {version} checkpoint "
                         f"{'without' if groups is None else 'with'} parameter groups")
    state = {}
    for key, value in members.items():
        if key in _SCALARS or key == _GROUPS:
            continue
        parts = key.split(".")
        if len(parts) != 3 or parts[0] != "state" or not parts[2].isdigit():
            raise ValueError(f"{who}: {path!r} has an unexpected member {key!r}")
        state.setdefault(parts[1], {})[int(parts[2])] = value
    count = sum(len(g.get("params", ())) for g in groups) if groups else None
    for name, by_index in state.items():
        n = count if count is not None else len(by_index)
        if version == 1 and sorted(by_index) != list(range(n)):
            raise ValueError(f"{who}: {path!r} lacks some arrays of the state buffer {name!r}")
        if any(i >= n for i in by_index):
            raise ValueError(f"{who}: {path!r} has more arrays of {name!r} than parameters")
        state[name] = [by_index.get(i) for i in range(n)]
    out = {
        "algorithm": scalars["algorithm"],
        "step": scalars["step"],
        "skipped_steps": scalars["skipped_steps"],
        "hyperparams": hyper,
        "state": state,
    }
    if groups is not None:
        out["param_groups"] = groups
    return out
