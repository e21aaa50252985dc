"""benchmarks/gpu_check.py: refuses plainly without a GPU; its whole path runs (CPU test mode) to one table."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = str(ROOT / "benchmarks" / "gpu_check.py")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present: the refusal cannot be seen here")
def test_without_a_gpu_it_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "no CUDA GPU visible" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


def test_cpu_test_mode_writes_the_table_and_json(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, SCRIPT, "--device", "cpu", "--size", "64x32", "--iterations", "3", "--warmup", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "gpu_check.json").read_text())
    [row] = result["rows"]
    assert row["backend"] == "torch-cpu" and row["teacher"]["host"]["count"] == 3 == row["student"]["host"]["count"]
    assert row["ratio_host_p50"] == pytest.approx(row["teacher"]["host"]["p50"] / row["student"]["host"]["p50"])
    assert row["ratio_host_p50"] > 0  # a figure, not a verdict: 3 timed calls on a loaded CPU can invert the pair (timings belong in benchmarks)
    assert "| torch-cpu | fp32 |" in (out / "gpu_check.md").read_text() and "| paper | fp32 | 171.2" in proc.stdout
