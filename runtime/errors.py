"""One error type for bad input data, whose message names the file, the line and the problem;
and one warning type for input we read but an official tool would not."""
from __future__ import annotations

import math
import os
import warnings


class DataError(ValueError):
    """Bad input: a missing/unreadable file, a malformed line, out-of-range values.

    ``str(err)`` is one line: ``<path>[:<line>]: <problem>``.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str | None = None, line: int | None = None) -> None:
        if problem is None:
            # Rebuilt from a message alone (e.g. re-raised by a torch DataLoader, whose message
            # wraps the original traceback): keep the original one-line message.
            last = str(path).strip().splitlines()[-1] if str(path).strip() else ""
            message = last.split("DataError: ", 1)[-1]
            self.path, self.line, self.problem = "", None, message
            super().__init__(message)
            return
        self.path = os.fspath(path)
        self.line = line
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # survive the trip back from worker processes
        if not self.path:
            return (type(self), (str(self),))
        return (type(self), (self.path, self.problem, self.line))


class DataWarning(UserWarning):
    """Input read, but an official tool of its format would refuse or misread it (a writer's bug
    that a lenient reader must not hide). ``str(w)`` is one line like :class:`DataError`'s."""


def warn_data(path: str | os.PathLike[str], problem: str, line: int | None = None) -> None:
    """Warn ``<path>[:<line>]: <problem>`` as a :class:`DataWarning`."""
    where = os.fspath(path) if line is None else f"{os.fspath(path)}:{line}"
    warnings.warn(DataWarning(f"{where}: {problem}"), stacklevel=3)


def non_finite(obj: object, prefix: str = "") -> tuple[str, float] | None:
    """The first NaN or infinite number in a JSON/YAML-like tree as (key path, value), e.g.
    ``("preprocess.mean[0]", nan)``; None when every number is finite (booleans are not numbers)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return prefix or "(value)", obj
    if isinstance(obj, dict):
        for key, value in obj.items():
            found = non_finite(value, f"{prefix}.{key}" if prefix else str(key))
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            found = non_finite(value, f"{prefix}[{i}]")
            if found:
                return found
    return None
