"""Run one command whose failure must not stop the pipeline; record the failure instead.

    python -m pipeline.best_effort --record FAILED.json -- COMMAND [ARGS...]

The command's output passes through (into the stage log). Exit 0 either way: on success the
record is removed (a stale one from an earlier failure), on failure it is written atomically
with the command, its exit status and the last lines of its output, for the summary to show.
The ``paper`` stage runs its GPU backends through this: a backend that cannot run on this
machine (a missing cuDNN, a TensorRT build error) loses its row, not the whole run.
"""
from __future__ import annotations

import subprocess
import sys
from collections import deque
from pathlib import Path

from runtime.atomic import atomic_write_json
from runtime.cli import Parser

TAIL_LINES = 20


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m pipeline.best_effort", description=__doc__.split("\n")[0])
    parser.add_argument("--record", required=True, help="JSON written when the command fails (removed when it succeeds)")
    parser.add_argument("command", nargs="+", help="the command and its arguments (after --)")
    args = parser.parse_args(argv)
    record = Path(args.record)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        proc = subprocess.Popen(args.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as err:
        returncode, tail = 127, deque([str(err)])
    else:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            tail.append(line.rstrip("\n"))
        returncode = proc.wait()
    if returncode == 0:
        record.unlink(missing_ok=True)
        return 0
    atomic_write_json(record, {"command": args.command, "returncode": returncode, "output_tail": list(tail)})
    print(f"[best effort] exited with {returncode}: recorded in {record}; the pipeline goes on", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
