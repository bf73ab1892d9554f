"""Build benchmark (issue 2): `occlum build` of a generated image of 1,000 files and
200 MB. Prints full-build throughput, the no-op rebuild time and the one-file rebuild
time as a fraction of the full build. Targets: >= 200 MB/s integrity-only, no-op
<= 0.5 s, one-file change <= 10% of the full build. Figures are printed, not asserted.

    python bench/build.py [--files 1000] [--mb 200] [--encrypted]
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def occlum(cwd, *args):
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "occlum_tasks.cli", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"occlum {' '.join(map(str, args))} failed:\n{proc.stdout}{proc.stderr}")
    return elapsed, proc


def generate(image, files, total_bytes, seed=1):
    """Files of varied sizes in nested folders, random content."""
    rng = random.Random(seed)
    weights = [rng.random() + 0.05 for _ in range(files)]
    scale = total_bytes / sum(weights)
    for i, weight in enumerate(weights):
        folder = image / "data" / f"d{i % 37:02d}" / f"e{i % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:04d}.bin").write_bytes(os.urandom(int(weight * scale)))


def image_step_seconds(proc):
    """The image step's own time, from its report line."""
    import re
    match = re.search(r"^image: .* in ([0-9.]+) s", proc.stderr, re.M)
    return float(match.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--encrypted", action="store_true", help="also measure --image-key")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="occlum-bench-") as tmp:
        tmp = Path(tmp)
        occlum(tmp, "new", "inst")
        inst = tmp / "inst"
        generate(inst / "image", args.files, args.mb * 1_000_000)
        total = sum(p.stat().st_size for p in (inst / "image").rglob("*") if p.is_file())
        print(f"image: {args.files} generated files, {total / 1e6:.0f} MB in all")

        full, proc = occlum(inst, "build")
        full_image = image_step_seconds(proc)
        noop = min(occlum(inst, "build")[0] for _ in range(3))
        victim = next((inst / "image" / "data").rglob("f0500.bin"))
        with open(victim, "r+b") as f:
            f.write(b"changed")
        one, proc = occlum(inst, "build")
        one_image = image_step_seconds(proc)
        print("                    whole `occlum build`          the image step alone")
        print(f"full build          {full:6.2f} s {total / 1e6 / full:6.1f} MB/s     "
              f"{full_image:6.2f} s {total / 1e6 / full_image:6.1f} MB/s   (target >= 200 MB/s)")
        print(f"no-op rebuild       {noop:6.3f} s                                       (target <= 0.5 s)")
        print(f"one file changed    {one:6.3f} s {one / full * 100:5.1f}% of full    "
              f"{one_image:6.3f} s {one_image / full_image * 100:5.1f}% of full   (target <= 10%)")
        if args.encrypted:
            occlum(tmp, "gen-image-key", "key")
            enc, proc = occlum(inst, "build", "--image-key", tmp / "key")
            enc_image = image_step_seconds(proc)
            print(f"encrypted build     {enc:6.2f} s {total / 1e6 / enc:6.1f} MB/s     "
                  f"{enc_image:6.2f} s {total / 1e6 / enc_image:6.1f} MB/s")


if __name__ == "__main__":
    main()
