"""Where the repository and its data files are."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEART = ROOT / "data" / "heart.csv"
REFERENCE = ROOT / "data" / "reference.csv"
