"""The benchmark scripts still run (a smoke run each, tiny sizes; the figures themselves are not tested)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_module(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_DIR"}  # no ComfyUI requirements in this venv
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_bench_comfy_times_the_node():
    out = run_module("benchmarks.bench_comfy", "--size", "64", "--repeats", "1")
    assert "Color Stroke + Canny node, 64x64" in out and "Apply path: skipped" in out


def test_bench_hints_times_every_part():
    out = run_module("benchmarks.bench_hints", "--size", "64", "--samples", "2")
    assert "speed-up x" in out and "hint     ours" in out and "mean F1" in out
    assert "fill_strokes" in out and "connectedComponents" in out
