"""The documentation site builds with ``mkdocs build --strict`` (a broken link, a missing
page or an unresolvable API reference fails it), and its configuration reference,
generated from the config schema at build time, documents every key a real config uses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "hooks"))

import config_reference  # noqa: E402  (docs/hooks is not a package)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    # No -q: mkdocs counts only the warnings it logs, so a quiet build passes "strict"
    # with warnings (a page left out of the nav went unnoticed that way).
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                          "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def test_strict_build_has_every_page(site: Path) -> None:
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text().split("\nnav:")[0]
                         .split("\nhooks:")[0])
    assert nav["strict"] is True
    for page in ("getting-started", "configuration", "reference/configuration", "providers",
                 "agents", "auth", "sessions-guide", "routing", "operations", "security",
                 "benchmarks", "api"):
        assert (site / page / "index.html").is_file(), page
    api = (site / "api" / "index.html").read_text()
    # mkdocstrings rendered the docstrings, not just the headings
    assert "Run a gateway" in api or "gateway" in api.lower()
    assert 'id="dragoman.core.ChatRequest"' in api
    bench = (site / "benchmarks" / "index.html").read_text()
    assert "instructions" in bench  # bench/README.md, included at build time


def _leaf_paths(value: Any, path: str = "") -> list[str]:
    """``section.key`` paths of a config (list items as ``[]``), without map values that
    are user data (headers, options)."""
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            p = f"{path}.{k}" if path else k
            out.append(p)
            if k not in ("headers", "options", "capabilities") or not path:
                out += _leaf_paths(v, p)
        return out
    if isinstance(value, list):
        return [x for item in value for x in _leaf_paths(item, path + "[]")]
    return []


def test_reference_documents_every_key_of_real_configs(site: Path) -> None:
    page = config_reference.render()
    sections = dict(re.findall(r"^## `?([^`{]+?)`? \{#([a-z0-9-]+)\}", page, re.M))
    examples = [yaml.safe_load((ROOT / "deploy" / "k8s" / "dragoman.yaml").read_text()),
                {"tracing": {"exporter": "otlp_http", "endpoint": "http://c:4318",
                             "headers": {}, "service_name": "x", "sample_ratio": 1.0,
                             "capture_content": False, "enabled": True}}]
    for cfg in examples:
        for path in _leaf_paths(cfg):
            parent, _, key = path.rpartition(".")
            parent_title = parent or "Top level"
            assert parent_title in sections, (path, sorted(sections))
            section = page.split("{#" + sections[parent_title] + "}", 1)[1].split("\n## ")[0]
            assert f"| `{key}` |" in section, path
    # types, defaults and an example per section
    tracing = page.split("{#cfg-tracing}", 1)[1].split("\n## ")[0]
    assert "| `exporter` | `\"console\"` \\| `\"none\"` \\| `\"otlp_grpc\"` \\| `\"otlp_http\"`" in tracing
    assert "| `sample_ratio` | number (≥ 0, ≤ 1) | `1.0` |" in tracing
    assert "```yaml\ntracing:\n  enabled: true\n" in tracing
    html = (site / "reference" / "configuration" / "index.html").read_text()
    assert 'id="cfg-tracing"' in html and 'id="cfg-models-deployments"' in html
