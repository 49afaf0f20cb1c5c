"""What the monitor's window copy holds on disk, read back for the tests that check it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from heartrisk.predlog import columnar


def copied_rows(folder: Path) -> pd.DataFrame:
    """Every row in the copies under ``folder`` (an empty frame with ``id`` and ``ts`` when there are none)."""
    tables = [columnar._read(path) for path in sorted(folder.rglob("*.arrow"))]
    return pa.concat_tables(tables).to_pandas() if tables else pd.DataFrame({"id": [], "ts": []})
