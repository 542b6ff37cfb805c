"""Files: the one atomic writer every stage uses, and the one JSON converter.

Every output of nsm_sim (CSV, JSON, PNG, HTML, netCDF, the world, the fit bundle) is
written through :func:`write_files` (a folder) or :func:`write_file` (one file), and is whole
or absent:

* The complete folder is built in a staging folder beside the target
  (``.NAME.nsm-sim-stage-PID-TOKEN``), then put in place in one step: a new folder by one
  rename, an existing one by an atomic exchange of the two (``renameat2`` with
  ``RENAME_EXCHANGE`` on Linux; elsewhere two renames, the old folder kept aside as
  ``.NAME.nsm-sim-old-PID-TOKEN`` until the new one is in place). A kill at any moment
  leaves the old folder or the new one, never a mix.
* What the old folder holds and the write does not name is carried into the new one (by
  hard links), so other files there are kept. The folder keeps its permissions, and so do
  the folders carried whole. A folder holding more than :data:`MAX_KEPT_ENTRIES` entries is
  refused as an output up front.
* Commits into one parent folder are serialised (an advisory lock on the parent), so two
  runs writing the same folder at once end with one complete result.
* Staging folders of a run that was killed are removed by the next write beside them once
  their process is gone (an old folder left aside is put back if the target is missing).
* The folders and files written get the user's normal permissions (the umask), like any
  other file.

JSON is always made of plain types by :func:`to_jsonable` (NaN and infinities become
``null``); text cells of CSV files that a spreadsheet would run as a formula are quoted (both
live in :mod:`nsm_sim.serialise` and are imported from here).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from nsm_sim.errors import InputError
from nsm_sim.serialise import dumps, spreadsheet_safe, to_jsonable, write_content

#: Marks the staging and set-aside folders of a write: ``.NAME.nsm-sim-KIND-PID-TOKEN``.
_WORK_NAME = re.compile(r"^\.(?P<target>.+)\.nsm-sim-(?P<kind>stage|old)-(?P<pid>\d+)-[0-9a-f]+$")

#: ``renameat2`` arguments: the current folder as base, and the exchange flag.
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2

#: Most entries an existing output folder may hold (all are carried into its replacement).
MAX_KEPT_ENTRIES = 10_000

# --------------------------------------------------------------------------- checks up front


def _more_entries_than(folder: Path, limit: int) -> bool:
    count = 0
    for _, dirs, names in os.walk(folder):
        count += len(dirs) + len(names)
        if count > limit:
            return True
    return False


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def output_problem(path: str | os.PathLike, *, folder: bool = True) -> str | None:
    """Say why an output could not be written to ``path``, before any work is done.

    Parameters
    ----------
    path : str or path
        The folder (or file) to write.
    folder : bool, default True
        ``path`` is a folder (else a file).

    Returns
    -------
    str or None
        What is wrong (is a file where a folder is expected or the reverse, is the current
        folder, is a mount point, cannot be created, is not writable), or None when the
        output can be written.
    """
    target = Path(os.path.realpath(path))
    shown = str(path)
    want = "a folder" if folder else "a file"
    if target == target.parent:
        return f"{shown} is the root of the file system; expected {want} inside it"
    if target.exists():
        if folder and not target.is_dir():
            return f"{shown} exists and is not a folder; expected a folder (new, or to replace)"
        if not folder and target.is_dir():
            return f"{shown} is a folder; expected a file name"
        if folder and os.path.ismount(target):
            return f"{shown} is a mount point; expected a folder inside it"
        if folder and Path.cwd().resolve().is_relative_to(target.resolve()):
            return f"{shown} holds the current folder; expected a folder for the outputs"
        if folder and not os.access(target, os.R_OK | os.X_OK):
            return f"{shown} cannot be read (its files are kept when it is replaced)"
        if folder and _more_entries_than(target, MAX_KEPT_ENTRIES):
            return (
                f"{shown} holds more than {MAX_KEPT_ENTRIES:,} files, which would all be kept "
                "in the new folder; expected a folder for the outputs (new, or written by "
                "nsm-sim)"
            )
    existing = _nearest_existing(target.parent)
    if not existing.is_dir():
        return f"{shown} cannot be created: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{shown} cannot be written: no permission to write in {existing}"
    if existing == target.parent:
        try:
            os.rmdir(_make_work_folder(target, "stage"))
        except OSError as exc:
            return f"{shown} cannot be written: {exc.strerror} ({target.parent})"
    return None


def check_output(path: str | os.PathLike, *, folder: bool = True, flag: str = "--out") -> None:
    """Raise an :class:`~nsm_sim.errors.InputError` if ``path`` cannot take an output.

    Parameters
    ----------
    path : str or path
        The folder (or file) to write.
    folder : bool, default True
        ``path`` is a folder (else a file).
    flag : str, default "--out"
        The option or file that named ``path``, for the message.

    Raises
    ------
    InputError
        With :func:`output_problem`'s message.
    """
    problem = output_problem(path, folder=folder)
    if problem is not None:
        raise InputError(flag, [problem])


# --------------------------------------------------------------------------- staging


def _make_work_folder(target: Path, kind: str) -> Path:
    """Create an empty ``.NAME.nsm-sim-KIND-PID-TOKEN`` folder beside ``target`` (umask mode)."""
    while True:
        work = target.parent / f".{target.name}.nsm-sim-{kind}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.mkdir(work)
            return work
        except FileExistsError:
            continue


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_stale(target: str | os.PathLike) -> list[Path]:
    """Remove the staging folders beside ``target`` that a killed run left behind.

    A folder whose process still runs is left alone. A set-aside old folder is put back
    when ``target`` is missing (a run killed between its two renames), else removed.

    Parameters
    ----------
    target : str or path
        The output folder or file.

    Returns
    -------
    list of Path
        The folders removed or put back.
    """
    target = Path(os.path.realpath(target))
    if not target.parent.is_dir():
        return []
    done = []
    for entry in sorted(target.parent.iterdir()):
        match = _WORK_NAME.match(entry.name)
        if not match or match["target"] != target.name or _alive(int(match["pid"])):
            continue
        if match["kind"] == "old" and not target.exists():
            with contextlib.suppress(OSError):
                os.rename(entry, target)
                done.append(entry)
                continue
        _remove(entry)
        done.append(entry)
    return done


def _carry_over(old: Path, new: Path) -> None:
    """Hard-link into ``new`` each entry of ``old`` that ``new`` lacks (copy where need be).

    A folder carried whole keeps its permissions; a folder the write made keeps the umask's.
    """
    for entry in old.iterdir():
        if _WORK_NAME.match(entry.name):
            continue
        there = new / entry.name
        if entry.is_symlink():
            if not there.exists() and not there.is_symlink():
                os.symlink(os.readlink(entry), there)
        elif entry.is_dir():
            carried = not there.exists()
            if carried:
                there.mkdir()
            if there.is_dir() and not there.is_symlink():
                _carry_over(entry, there)
            if carried:
                shutil.copymode(entry, there)
        elif entry.is_file() and not there.exists() and not there.is_symlink():
            try:
                os.link(entry, there)
            except OSError:
                shutil.copy2(entry, there)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step; False where the system cannot (then nothing changed)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


@contextlib.contextmanager
def _parent_lock(folder: Path) -> Iterator[None]:
    """Hold an advisory lock on ``folder`` (nothing where the system has none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _commit(staging: Path, out: Path) -> None:
    """Put the complete ``staging`` folder in place of ``out`` in one step."""
    with _parent_lock(out.parent):
        clean_stale(out)
        if out.is_dir() and not out.is_symlink():
            _carry_over(out, staging)
            shutil.copymode(out, staging)
        elif out.exists() or out.is_symlink():
            raise FileExistsError(errno.EEXIST, "exists and is not a folder", str(out))
        if not out.exists():
            os.rename(staging, out)
            return
        if _exchange(staging, out):
            retired = staging
        else:
            retired = _make_work_folder(out, "old")
            os.rmdir(retired)
            os.rename(out, retired)
            os.rename(staging, out)
    _remove(retired)


class Staging:
    """A staging folder being filled; :func:`staged` puts it in place when the block ends.

    Attributes
    ----------
    path : Path
        The staging folder: write here (directly, or with :meth:`write`).
    out : Path
        The folder it becomes.
    """

    def __init__(self, path: Path, out: Path):
        self.path = path
        self.out = out

    def write(self, files: Mapping[str, Any]) -> list[Path]:
        """Write files into the staging folder.

        Parameters
        ----------
        files : mapping of str to content
            File name (may contain ``/``) to content: ``str`` or ``bytes`` as is, a
            DataFrame as CSV (formula-like text cells quoted), a matplotlib figure as PNG, a
            callable as ``content(path)``, anything else as JSON. Files are written in
            order, so a callable may read those written before it.

        Returns
        -------
        list of Path
            Where the files will be once the folder is in place (under :attr:`out`).
        """
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            write_content(target, content)
        return [self.out / name for name in files]


@contextlib.contextmanager
def staged(out_dir: str | os.PathLike) -> Iterator[Staging]:
    """Build a folder in a staging folder beside it; put it in place when the block ends.

    On an exception the staging folder is removed and ``out_dir`` is left as it was.

    Parameters
    ----------
    out_dir : str or path
        The folder to write (its parents are created if needed).

    Yields
    ------
    Staging
    """
    out = Path(os.path.realpath(out_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    staging = _make_work_folder(out, "stage")
    try:
        yield Staging(staging, Path(out_dir))
        _commit(staging, out)
    finally:
        if staging.exists():
            _remove(staging)


def write_files(out_dir: str | os.PathLike, files: Mapping[str, Any]) -> list[Path]:
    """Write several files as one folder, whole or absent (see the module docstring).

    Parameters
    ----------
    out_dir : str or path
        Target folder; created, or replaced in one step by the old folder's entries that
        ``files`` does not name plus ``files``.
    files : mapping of str to content
        As for :meth:`Staging.write`.

    Returns
    -------
    list of Path
        The files written.
    """
    with staged(out_dir) as staging:
        return staging.write(files)


def write_file(path: str | os.PathLike, content: Any | Callable[[Path], None]) -> Path:
    """Write one file atomically (staged beside it under its own name, then one rename).

    Other files of its folder are left alone.

    Parameters
    ----------
    path : str or path
        The file.
    content : Any
        As for :meth:`Staging.write`.

    Returns
    -------
    Path
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    staging = _make_work_folder(target, "stage")
    try:
        write_content(staging / target.name, content)
        os.replace(staging / target.name, target)
    finally:
        _remove(staging)
    return path


__all__ = [
    "Staging",
    "check_output",
    "clean_stale",
    "dumps",
    "output_problem",
    "spreadsheet_safe",
    "staged",
    "to_jsonable",
    "write_file",
    "write_files",
]


def write_parquet(frame: Any, path: str | Path) -> None:
    """Write a table as Parquet that every engine reads: timestamps to the micro-second.

    Spark refuses Parquet's nanosecond timestamps, pandas' default; micro-seconds are what
    warehouses and Spark write.

    Parameters
    ----------
    frame : pandas.DataFrame or pyarrow.Table
    path : str or Path
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = (
        frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    )
    pq.write_table(table, path, coerce_timestamps="us", allow_truncated_timestamps=False)
