"""The HTML report renders in headless Chromium (Debian's `chromium`), and its plots are on the screenshot.

CI installs chromium through scripts/system-deps.sh; on a machine without it the test is skipped.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from turnwise.eval.plots import PALETTE
from turnwise.eval.report import write_report

pytestmark = pytest.mark.integration

CATEGORIES = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]
WIDTH, HEIGHT = 1200, 1600


def records(model: str, offset: float) -> list[dict]:
    """Ten MT-Bench-like dialogues of two turns per category; turn 2 scores lower (the degradation curve)."""
    out = []
    for i in range(80):
        scores = [{"turn": 1, "score": min(10.0, 6 + offset + i % 3)}, {"turn": 2, "score": 3 + offset + i % 4}]
        out.append({"id": str(i), "status": "ok", "mode": "single", "benchmark": "mt-bench", "model": model,
                    "judge": "scripted", "category": CATEGORIES[i % 8], "turns": ["q1", "q2"], "answers": ["a", "b"],
                    "scores": scores, "meta": {}})
    return out


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    pytest.skip("chromium is not installed (CI installs Debian's chromium via scripts/system-deps.sh)")


def screenshot(html: Path, png: Path, profile: Path) -> None:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}",
           html.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.is_file(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"


def read_png(path: Path):  # -> numpy array (height, width, 3)
    """A minimal PNG decoder (8-bit RGB/RGBA, not interlaced): what Chromium's screenshots are."""
    np = pytest.importorskip("numpy")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (size,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data[pos + 8:pos + 8 + 13])
        elif kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + size]
        pos += 12 + size
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width * bpp + 1)
    out = np.zeros((height, width * bpp), dtype=np.uint8)
    previous = np.zeros(width * bpp, dtype=np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 1:  # Sub: a running sum per channel
            line = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:  # Up
            line = (line + previous) % 256
        elif kind in (3, 4):
            line = _sequential(line.tolist(), previous.tolist(), bpp, kind)
        out[y] = line
        previous = out[y].astype(np.int32)
    return out.reshape(height, width, bpp)[:, :, :3]


def _sequential(line: list[int], up: list[int], bpp: int, kind: int):
    import numpy as np

    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        corner = up[i - bpp] if i >= bpp else 0
        if kind == 3:  # Average
            line[i] = (line[i] + (left + up[i]) // 2) % 256
        else:  # Paeth
            p = left + up[i] - corner
            pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
            predictor = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
            line[i] = (line[i] + predictor) % 256
    return np.array(line, dtype=np.int32)


def pixels_of(image, color: str, x0: int, x1: int) -> int:
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    region = image[:, x0:x1].astype(int)
    return int(((abs(region - rgb)).sum(axis=2) <= 6).sum())


def test_the_report_renders_with_both_plots(tmp_path: Path) -> None:
    paths = write_report(records("alpha", 1.0) + records("beta", 0.0), tmp_path / "report", title="screenshot")
    html = paths["report.html"].read_text()
    for svg in ('<svg id="turns-mt-bench"', '<svg id="radar-mt-bench"'):
        assert svg in html
    png = tmp_path / "report.png"
    screenshot(paths["report.html"], png, tmp_path / "profile")
    image = read_png(png)
    assert image.shape == (HEIGHT, WIDTH, 3)
    assert len({tuple(p) for p in image[::4, ::4].reshape(-1, 3).tolist()}) > 50  # not a blank page
    # The plots sit side by side under the heading: the degradation curve left, the radar right. Each model's
    # colour must show in both (lines and markers are drawn at full opacity).
    for color in PALETTE[:2]:
        assert pixels_of(image[:800], color, 0, WIDTH // 2) > 200, f"{color} missing from the turn plot"
        assert pixels_of(image[:800], color, WIDTH // 2, WIDTH) > 200, f"{color} missing from the radar"
