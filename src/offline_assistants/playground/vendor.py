"""The playground's front-end libraries, vendored from npm as published: their ES module builds, byte for byte.

    python -m offline_assistants.playground.vendor          fetch the pinned versions, write static/vendor/
    python -m offline_assistants.playground.vendor --check  fetch them and say whether static/vendor/ matches

`npm pack` fetches each package's tarball (the registry's integrity hash is checked by npm and kept in the
manifest); the files below are copied out unchanged, and static/vendor/manifest.json records each one's source
and sha256. tests/playground/test_assets.py checks the shipped files against the manifest, offline. To update a
library, change its version in PACKAGES, run this, and commit static/vendor/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR = Path(__file__).parent / "static" / "vendor"
MANIFEST = VENDOR / "manifest.json"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    files: dict[str, str]  # path inside the package -> path under static/vendor/


HLJS_LANGUAGES = ("python", "javascript", "json", "bash", "plaintext", "markdown", "sql", "xml")

PACKAGES = (
    # Markdown to HTML (CommonMark and GFM).
    Package("marked", "18.2.1", {"lib/marked.esm.js": "marked.esm.js", "LICENSE": "marked.LICENSE"}),
    # The HTML marked makes is sanitised before it reaches the page. Renamed to .js: a module script needs a
    # JavaScript MIME type, and not every Python maps .mjs to one.
    Package("dompurify", "3.5.0", {"dist/purify.es.mjs": "purify.es.js", "LICENSE": "dompurify.LICENSE"}),
    # Code highlighting: the core and the few grammars the playground shows, as ES modules.
    Package("@highlightjs/cdn-assets", "11.12.0", {
        "es/core.min.js": "highlight/core.min.js",
        **{f"es/languages/{lang}.min.js": f"highlight/{lang}.min.js" for lang in HLJS_LANGUAGES},
        "styles/github.min.css": "highlight/github.min.css",
        "styles/github-dark.min.css": "highlight/github-dark.min.css",
        "LICENSE": "highlight/LICENSE",
    }),
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(into: Path) -> dict[str, object]:
    """Unpack the pinned packages' files under `into`; return the manifest that describes them."""
    packages: dict[str, object] = {}
    files: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for package in PACKAGES:
            spec = f"{package.name}@{package.version}"
            out = subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", tmp], check=True,
                                 capture_output=True, text=True).stdout
            packed = json.loads(out)[0]
            packages[package.name] = {"version": package.version, "integrity": packed["integrity"]}
            with tarfile.open(Path(tmp) / packed["filename"]) as tar:
                for source, target in package.files.items():
                    member = tar.extractfile(f"package/{source}")
                    if member is None:
                        raise SystemExit(f"{spec} has no {source}")
                    dest = into / target
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(member.read())
                    files[target] = {"package": package.name, "path": source, "sha256": sha256(dest)}
    return {"packages": packages, "files": dict(sorted(files.items()))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = fetch(Path(tmp))
        shipped = json.loads(MANIFEST.read_text())
        same = fresh["files"] == shipped["files"] and all(
            sha256(VENDOR / name) == meta["sha256"] for name, meta in shipped["files"].items())
        print("static/vendor matches npm" if same else "static/vendor differs from npm: run without --check")
        return 0 if same else 1
    manifest = fetch(VENDOR)
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {len(manifest['files'])} files to {VENDOR}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
