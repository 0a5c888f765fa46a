"""Build a model folder once, safely: a lock, a temp folder, a rename, a marker.

Two processes asked for the same folder (e.g. several workers starting at once)
must not both write into it, and a crash half-way must not leave a folder that
looks finished. So the folder is built in a sibling temp folder, a marker file
recording what was built is written last, and the temp folder is renamed into
place. A file lock makes the second process wait for the first instead of
building again; without `fcntl` the rename alone keeps the result consistent.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

try:  # POSIX only; the rename below is the fallback guarantee.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

from model_zoo.errors import BuildError

MARKER = "grm_model_zoo.json"


def read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def is_built(folder: Path, spec: Mapping[str, Any]) -> bool:
    marker = read_marker(folder)
    return marker is not None and marker.get("spec") == dict(spec)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        if fcntl is not None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _open_up(folder: Path) -> None:
    """Give the build the modes of ordinary files (temp folders are private)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(folder, 0o777 & ~mask)
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)


def _move_aside(folder: Path) -> None:
    """Remove an outdated build of ours; refuse to touch anything else."""
    if read_marker(folder) is None:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            return
        raise BuildError(
            f"{folder} exists and is not a model_zoo build; refusing to overwrite it "
            "(choose another output folder or remove it)"
        )
    trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    os.rename(folder, trash / folder.name)
    shutil.rmtree(trash, ignore_errors=True)


def build_once(
    out_dir: str | os.PathLike,
    spec: Mapping[str, Any],
    build: Callable[[Path], Mapping[str, Any] | None],
) -> Path:
    """Run ``build(tmp_dir)`` unless ``out_dir`` already holds a build of ``spec``.

    ``build`` writes the model into the folder it is given and may return extra
    facts to record in the marker (e.g. a verification result).
    """
    out = Path(out_dir).expanduser().resolve()
    if is_built(out, spec):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(out.with_name(out.name + ".lock")):
        if is_built(out, spec):  # another process finished while we waited
            return out
        if out.exists():
            _move_aside(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            extra = build(tmp) or {}
            marker = {"spec": dict(spec), **dict(extra)}
            (tmp / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
            _open_up(tmp)
            try:
                os.rename(tmp, out)
            except OSError:
                # Only reachable without a lock: someone else renamed first.
                if not is_built(out, spec):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out
