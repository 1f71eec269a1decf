"""Pages that live elsewhere in the repository, included at build time so the site never
holds a stale copy: ``benchmarks.md`` is ``bench/README.md`` (the numbers are written
there, next to the code that measures them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INCLUDED = {"benchmarks.md": ROOT / "bench" / "README.md",
            # linked from the benchmarks page
            "reference-measurements.md": ROOT / "bench" / "reference-measurements.md"}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for page, source in INCLUDED.items():
        files.append(File.generated(config, page, content=source.read_text()))
    return files
