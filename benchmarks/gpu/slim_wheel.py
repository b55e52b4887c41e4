"""Slim a llama-cpp-python wheel to what the package loads, so that it fits what the device check carries.

llama.cpp's own install rules put, beside the package's `llama_cpp/lib`, a second copy of every library at the
wheel's root (`lib/`), its headers, CMake and pkg-config files and, with LLAMA_BUILD_TOOLS, the tools' executables
(`bin/`). The package loads only `llama_cpp/lib`. This keeps `llama_cpp/` and the .dist-info (its RECORD rewritten
to match), and copies the members named by --take (llama-bench and the one library it needs that the package lacks,
libllama-common) into another folder.

    python benchmarks/gpu/slim_wheel.py IN.whl OUT_DIR [--take bin/llama-bench lib/libllama-common.so --to DIR]
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path


def kept(name: str) -> bool:
    top = name.split("/", 1)[0]
    return top == "llama_cpp" or top.endswith(".dist-info")


def slim(wheel: Path, out_dir: Path, take: list[str], to: Path | None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(target.with_suffix(".part"), "w",
                                                         zipfile.ZIP_DEFLATED) as dst:
        names = src.namelist()
        for wanted in take:
            if wanted not in names:
                raise SystemExit(f"{wheel.name} holds no {wanted}")
            assert to is not None
            to.mkdir(parents=True, exist_ok=True)
            (to / Path(wanted).name).write_bytes(src.read(wanted))
            (to / Path(wanted).name).chmod(0o755)
        for info in src.infolist():
            if not kept(info.filename):
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = ("\n".join(line for line in lines if kept(line.split(",", 1)[0])) + "\n").encode()
            dst.writestr(info, data)
    target.with_suffix(".part").rename(target)
    before, after = wheel.stat().st_size, target.stat().st_size
    dropped = sum(not kept(n) for n in names)
    print(f"{target}: {after / 2**20:.1f} MiB ({before / 2**20:.1f} before; {dropped} files outside llama_cpp/ "
          f"dropped)", file=sys.stderr)
    return target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--take", nargs="*", default=[], help="members to copy out before they are dropped")
    ap.add_argument("--to", type=Path, help="where --take copies them")
    args = ap.parse_args()
    if args.take and args.to is None:
        ap.error("--take needs --to")
    slim(args.wheel, args.out_dir, args.take, args.to)
    return 0


if __name__ == "__main__":
    sys.exit(main())
