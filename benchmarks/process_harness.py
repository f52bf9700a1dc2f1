"""``vs_reference.py --processes``: whole processes timed by a small harness.

``restore infer`` (``options/neighbor2neighbor/infer/n2n_gauss25.yml``, the official N2N network) and the official
validation loop (``official_n2n_folder.py``) restore the same folder with the same random weights.
Each run is a fresh process under ``/usr/bin/time`` (its wall time, user and system CPU and peak
RSS; a child forked straight from this Python process would inherit its memory high-water mark);
runs alternate, median of ``repeats``. The outputs of the last runs are compared (8-bit codes).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = ROOT / "options" / "neighbor2neighbor" / "infer" / "n2n_gauss25.yml"
KODAK = Path(os.environ.get("RESTORE_SHARED_DATA") or ROOT.parent / "shared" / "data") / "kodak24"


def run_child(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd`` to completion: wall s, user s, sys s, peak RSS MiB (an error if it fails)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        done = subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%e %U %S %M", *cmd],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
        if done.returncode:
            err = done.stderr.strip().splitlines()
            raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {done.returncode}: {err[-1] if err else ''}")
        wall, user, system, rss_kib = report.read().split()[-4:]
    return {"wall": float(wall), "user": float(user), "sys": float(system), "rss": float(rss_kib) / 1024}


def folder_difference(a: Path, b: Path) -> int:
    """Max abs difference in 8-bit codes over the PNGs of two folders (same names)."""
    worst = 0
    for path in sorted(a.glob("*.png")):
        x = np.asarray(Image.open(path), dtype=np.int16)
        y = np.asarray(Image.open(b / path.name), dtype=np.int16)
        worst = max(worst, int(np.abs(x - y).max()))
    return worst


def compare_processes(repeats: int, backends: list[str], quick: bool = False) -> None:
    """Print a table of median wall / CPU / peak RSS: the official loop, then restore per backend."""
    from restore.archs.n2n_unet import N2NUNet

    images = sorted(KODAK.glob("*.png"))
    if not images:
        raise SystemExit(f"no PNG images in {KODAK}")
    with tempfile.TemporaryDirectory(prefix="vs_reference_") as tmp:
        work = Path(tmp)
        source = KODAK
        if quick:  # two small crops: checks the harness, times nothing useful
            source = work / "input"
            source.mkdir()
            for path in images[:2]:
                Image.open(path).crop((0, 0, 96, 64)).save(source / path.name)
        torch.manual_seed(0)
        weights = work / "weights.pth"
        torch.save(N2NUNet(n_feature=48).state_dict(), weights)  # the official file layout
        python = sys.executable
        commands = {"official loop": [python, str(ROOT / "benchmarks" / "official_n2n_folder.py"), "--weights",
                                      str(weights), "--input", str(source), "--output", str(work / "official")]}
        for backend in backends:
            extra = [] if backend == "torch" else ["--set", f"infer.backend={backend}"]
            commands[f"restore infer ({backend})"] = [
                python, "-m", "restore.cli.main", "infer", "-opt", str(OPTIONS),
                "--weights", str(weights), "--input", str(source), "--output", str(work / backend), "--overwrite",
                "--no-progress", "--device", "cpu", *extra]
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in commands}
        skipped: dict[str, str] = {}
        for _ in range(repeats):
            for name, cmd in commands.items():
                if name in skipped:
                    continue
                try:
                    runs[name].append(run_child(cmd))
                except RuntimeError as exc:
                    skipped[name] = str(exc)
        n = len(list(source.glob("*.png")))
        print(f"{n} images from {source}, N2N UNet (F=48, random weights), median of {repeats} interleaved runs")
        print("| process | wall s | user s | sys s | peak RSS MiB | images/s | wall / official | max diff (codes) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        base = statistics.median(r["wall"] for r in runs["official loop"])
        for name, rows in runs.items():
            if name in skipped:
                print(f"| {name} | | | | | | | skipped: {skipped[name][:120]} |")
                continue
            med = {k: statistics.median(r[k] for r in rows) for k in ("wall", "user", "sys", "rss")}
            folder = work / ("official" if name == "official loop" else name.split("(")[1].rstrip(")"))
            diff = folder_difference(folder, work / "official")
            print(f"| {name} | {med['wall']:.1f} | {med['user']:.1f} | {med['sys']:.1f} | {med['rss']:.0f} | "
                  f"{n / med['wall']:.2f} | {med['wall'] / base:.2f} | {diff} |")
        # the spread, and each run against the official run next to it (the load of that moment hit both)
        official = [r["wall"] for r in runs["official loop"]]
        for name, rows in runs.items():
            if name in skipped:
                continue
            walls = ", ".join(f"{r['wall']:.1f}" for r in rows)
            paired = ", ".join(f"{r['wall'] / o:.2f}" for r, o in zip(rows, official))
            print(f"{name}: wall s per run {walls}" + ("" if name == "official loop" else f"; paired ratios {paired}"))
