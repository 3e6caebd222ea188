"""Tiny fake sickle dataset in the real on-disk layout (torchgeo-style fixture generator).

The generator lives in :mod:`smarties_terratorch.testing.sickle` so that ``smarties bench run --smoke`` can use it
from an installed package; this file keeps the tests' ``tests/data/<dataset>/data.py`` entry point.
Run ``python data.py [root]`` to write the fixture into a folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from smarties_terratorch.testing.sickle import make

__all__ = ["make"]

if __name__ == "__main__":
    print(make(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "sickle"))
