"""The vendored front-end libraries are npm's published files, unchanged: each one's sha256 matches the manifest
that `python -m offline_assistants.playground.vendor` wrote when it fetched them, the manifest names every file
there, and its versions are the pinned ones."""

from __future__ import annotations

import hashlib
import json

from offline_assistants.playground import vendor


def test_every_vendored_file_matches_its_manifest_entry() -> None:
    manifest = json.loads(vendor.MANIFEST.read_text())
    shipped = {p.relative_to(vendor.VENDOR).as_posix() for p in vendor.VENDOR.rglob("*") if p.is_file()}
    assert shipped - {"manifest.json"} == set(manifest["files"])
    for name, entry in manifest["files"].items():
        digest = hashlib.sha256((vendor.VENDOR / name).read_bytes()).hexdigest()
        assert digest == entry["sha256"], f"{name} differs from {entry['package']}'s {entry['path']}"


def test_the_manifest_is_what_the_pins_ask_for() -> None:
    manifest = json.loads(vendor.MANIFEST.read_text())
    pins = {p.name: p.version for p in vendor.PACKAGES}
    assert {name: meta["version"] for name, meta in manifest["packages"].items()} == pins
    assert all(meta["integrity"].startswith("sha512-") for meta in manifest["packages"].values())
    wanted = {target: (p.name, source) for p in vendor.PACKAGES for source, target in p.files.items()}
    assert {name: (e["package"], e["path"]) for name, e in manifest["files"].items()} == wanted


def test_the_wheel_takes_every_file_the_page_needs() -> None:
    """pyproject's package-data globs (setuptools reads them relative to the package) cover every static file, so
    `pip install .` (not only an editable install) serves the whole page."""
    import tomllib
    from pathlib import Path

    root = Path(vendor.__file__).parent
    pyproject = tomllib.loads((root.parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["offline_assistants.playground"]
    covered = {p for pattern in patterns for p in root.glob(pattern) if p.is_file()}
    needed = {p for p in (root / "static").rglob("*") if p.is_file()}
    assert needed and needed <= covered, sorted(str(p.relative_to(root)) for p in needed - covered)
