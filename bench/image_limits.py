"""Benchmark: what the worst images anyone can send cost in time and memory (decode + tower preprocessing).

Prints figures (it is not a test). Builds small files that ask for huge work (1×100000 and 100000×1 strips, a
PNG decompression bomb, a 300-frame GIF) and the largest images the default search limits allow (5000×5000 JPEG
and RGBA PNG, a 250×5000 strip at the 20:1 aspect cap), then decodes and preprocesses each in a fresh process
and reports its wall time and peak RSS beside a normal 640×640 JPEG photo (ratio = peak / baseline peak).
Two preprocessings: ``pad`` (square_thumbnail, the trained tower's) and ``clip`` (open_clip's own transform,
the untrained/pretrained tower's: shortest side to the input size, centre crop).

    .venv/bin/python bench/image_limits.py
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZE = 128  # the tower input the project configures (ImageEncoderSettings.image_size)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(side: int) -> bytes:
    """A real 1-bit all-black ``side``² PNG, streamed through zlib so building it never holds the raw rows."""
    row = b"\x00" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _saved(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _photo(width: int, height: int) -> Image.Image:
    """A photo-like RGB image: gradients and noise (so JPEG has real work to do)."""
    ramp = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 40)
    return Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.ROTATE_90).resize((width, height)), noise))


def worst_images() -> dict[str, bytes]:
    """Name → file bytes: the baseline photo first, then the worst cases."""
    frames = [Image.new("P", (1000, 1000), i % 256) for i in range(300)]
    return {
        "photo 640x640 JPEG (baseline)": _saved(_photo(640, 640), "JPEG", quality=90),
        "strip 1x100000 PNG": _saved(Image.new("L", (1, 100_000)), "PNG"),
        "strip 100000x1 PNG": _saved(Image.new("L", (100_000, 1)), "PNG"),
        "strip 1x4000 PNG": _saved(Image.new("L", (1, 4000)), "PNG"),
        "bomb 10000x10000 1-bit PNG": bomb_png(10_000),
        "bomb 4900x4900 1-bit PNG": bomb_png(4900),
        "max 5000x5000 JPEG": _saved(_photo(5000, 5000), "JPEG", quality=60),
        "max 5000x5000 RGBA PNG": _saved(Image.new("RGBA", (5000, 5000), (10, 20, 30, 128)), "PNG"),
        "strip 250x5000 PNG (20:1)": _saved(Image.new("RGB", (250, 5000), (200, 10, 10)), "PNG"),
        "GIF 300 frames 1000x1000": _saved(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "EPS 64x64": _saved(Image.new("RGB", (64, 64)), "EPS"),
    }


def measure_one(path: Path, mode: str) -> dict[str, object]:
    """In this process: decode with the default search limits, preprocess for the tower; time and peak RSS."""
    from recommender.catalog.images import ImageProblem, decode_image, image_limits
    from recommender.config import SearchSettings
    from recommender.encoders.image import square_thumbnail

    transform = _clip_transform() if mode == "clip" else None
    data = path.read_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    try:
        image = decode_image(data, image_limits(SearchSettings()), path.name)
        shape = tuple(transform(image).shape) if transform else square_thumbnail(image, SIZE).size
        outcome = f"ok {image.width}x{image.height} -> {shape}"
    except ImageProblem as exc:
        outcome = f"refused ({type(exc).__name__}): {str(exc).split(': ', 1)[-1][:60]}"
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"bytes": len(data), "seconds": seconds, "peak_mb": peak / 1024, "grew_mb": (peak - before) / 1024,
            "outcome": outcome}


def _clip_transform() -> object:
    import open_clip

    return open_clip.image_transform(SIZE, is_train=False)


def main() -> None:
    """Build the images, measure each in a fresh process, print a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["pad", "clip"], default="pad")
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure_one(args.one, args.mode)))
        return
    if args.build is not None:
        for i, (name, data) in enumerate(worst_images().items()):
            (args.build / f"case{i}").write_bytes(data)
            (args.build / f"case{i}.name").write_text(name)
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's code, even under another's venv
    with tempfile.TemporaryDirectory() as tmp:
        # Built in a child: Linux carries a parent's peak RSS into the children it starts, so this one stays small.
        subprocess.run([sys.executable, __file__, "--build", tmp], check=True, env=env)
        names = [(Path(tmp) / f"case{i}.name").read_text() for i in range(len(list(Path(tmp).glob("*.name"))))]
        print(f"{'image':32} {'file':>9} {'mode':4} {'time s':>7} {'peak MB':>8} {'grew MB':>8} {'ratio':>6}  outcome")
        base: dict[str, float] = {}
        for i, name in enumerate(names):
            path = Path(tmp) / f"case{i}"
            for mode in ("pad", "clip"):
                run = subprocess.run([sys.executable, __file__, "--one", str(path), "--mode", mode],
                                     capture_output=True, text=True, check=True, env=env)
                r = json.loads(run.stdout)
                base.setdefault(mode, r["peak_mb"])
                print(f"{name:32} {r['bytes']:>9} {mode:4} {r['seconds']:7.3f} {r['peak_mb']:8.0f} "
                      f"{r['grew_mb']:8.0f} {r['peak_mb'] / base[mode]:6.2f}  {r['outcome']}", flush=True)


if __name__ == "__main__":
    main()
