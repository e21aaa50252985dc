"""``--extra-eval ROOT[:LIST]``: the extra CULane-format roots every deployed model is scored on.

Measurement only: nothing is trained or tuned on them. Without ``--extra-eval`` the real dev sets
``../shared/data/culane_real_dev`` (CULane frames) and ``../shared/data/culane_real_other`` (other
cameras, other frame sizes) are used where present (``list/all.txt``), unless ``--no-extra-eval``.
Frames of any size are scored through the model's frame policy (:mod:`runtime.scoring`). Each set is checked up front (root, list, every listed image and its
``.lines.txt``), so a bad one fails in one line before any stage runs.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.stages import SHARED_DEV_SETS, ExtraEval
from runtime.culane import read_list
from runtime.errors import DataError

DEFAULT_LIST = "list/test.txt"
SHARED_LIST = "list/all.txt"


def split_spec(spec: str) -> tuple[Path, str | None]:
    """``ROOT`` or ``ROOT:LIST`` -> (root, list or None); a root whose own name holds ``:`` is taken whole."""
    if Path(spec).is_dir() or ":" not in spec:
        return Path(spec), None
    root, _, name = spec.rpartition(":")
    return Path(root), name or None


def check_set(root: Path, list_name: str | None, name: str) -> tuple[ExtraEval, int]:
    """The set and its image count; :class:`DataError` naming the path when the root, the list, an
    image or an annotation is missing, or the list is malformed or empty. A relative LIST is relative
    to ROOT (then to ROOT/list)."""
    if not root.is_dir():
        raise DataError(root, "--extra-eval root is not a directory")
    root = root.resolve()
    given = Path(list_name or DEFAULT_LIST)
    candidates = [given] if given.is_absolute() else [root / given, root / "list" / given]
    path = next((c for c in candidates if c.is_file()), candidates[0])
    if not path.is_file():
        raise DataError(path, "--extra-eval list not found")
    samples = read_list(path).samples
    if not samples:
        raise DataError(path, "--extra-eval list names no images")
    for sample in samples:
        for relative in (sample.image, sample.lines_name):
            if not (root / relative).is_file():
                raise DataError(root / relative, f"not found (listed in {path}:{sample.line})")
    return ExtraEval(name, root, path.resolve()), len({s.image for s in samples})


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``, ... when taken."""
    k, out = 1, name
    while out in taken:
        k += 1
        out = f"{name}-{k}"
    return out


def resolve(specs: list[str], use_default: bool, default_roots: tuple[Path, ...] = SHARED_DEV_SETS
            ) -> tuple[list[ExtraEval], str | None]:
    """The extra sets and the line to print about them (None when there are none).

    Raises ``SystemExit`` with one ``error:`` line for a bad ``--extra-eval``; a default set that is
    unusable is left out, said in the line."""
    sets: list[tuple[ExtraEval, int]] = []
    if specs:
        for spec in specs:
            root, list_name = split_spec(spec)
            try:
                sets.append(check_set(root, list_name, unique_name(root.resolve().name, {s.name for s, _ in sets})))
            except DataError as err:
                raise SystemExit(f"error: {err}") from None
        counts = ", ".join(f"{s.name} ({s.list.relative_to(s.root) if s.list.is_relative_to(s.root) else s.list}, {n} images)"
                           for s, n in sets)
        return [s for s, _ in sets], f"extra evaluation (measurement only): {counts}"
    if not use_default:
        return [], None
    problems = []
    for root in default_roots:
        if not root.is_dir():
            continue
        try:
            sets.append(check_set(root, SHARED_LIST, unique_name(root.resolve().name, {s.name for s, _ in sets})))
        except DataError as err:
            problems.append(f"{root.name} is unusable, left out: {err}")
    if not sets and not problems:
        return [], None
    found = ", ".join(f"{s.name} ({n} images)" for s, n in sets)
    line = (f"extra evaluation: real dev sets {found} ({SHARED_LIST}; measurement only, never trained or tuned on); "
            "--no-extra-eval to leave them out") if sets else "extra evaluation: none"
    return [s for s, _ in sets], "; ".join([line, *problems])
