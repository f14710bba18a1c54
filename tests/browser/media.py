"""A small, real, seekable video made at test time: raw frames (numpy) -> vpxenc -> WebM (VP8).

vpxenc (Debian vpx-tools) writes a WebM with cues, so a browser can seek by byte range.
The frames carry noise, which keeps the bit rate (and so the file) large enough that
seeking to the middle needs a ranged read instead of being served from what the first
response already buffered.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

VPXENC = "/usr/bin/vpxenc"


def make_webm(path: Path, seconds: int = 20, width: int = 240, height: int = 180, fps: int = 10) -> Path:
    if shutil.which(VPXENC) is None:
        raise RuntimeError("vpxenc is not installed (Debian vpx-tools; run scripts/setup.sh --test as root)")
    # A keyframe every second, as real videos have: with only the first frame a keyframe the
    # cues hold one point and every seek starts decoding (and reading) from the beginning.
    raw = path.with_suffix(".y4m")
    rng = np.random.default_rng(12345)
    yy, xx = np.mgrid[0:height, 0:width]
    chroma = np.full((height // 2) * (width // 2) * 2, 128, np.uint8).tobytes()
    with open(raw, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(seconds * fps):
            noise = rng.integers(0, 256, (height, width), np.uint8)
            luma = ((xx + yy + i * 6) % 256).astype(np.uint8) ^ noise
            fh.write(b"FRAME\n")
            fh.write(luma.tobytes())
            fh.write(chroma)
    subprocess.run([VPXENC, "--codec=vp8", "--rt", "--cpu-used=16", "--end-usage=cbr",
                    "--target-bitrate=6000", f"--kf-max-dist={fps}", "-q", "-o", str(path), str(raw)],
                   check=True, timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    raw.unlink()
    return path
