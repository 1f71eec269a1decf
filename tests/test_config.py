"""Config loading: validation names the bad key, ${ENV} interpolation, secrets kept out of
messages and reprs, and the CLI refusing a bad file with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dragoman.config import ConfigError, build_gateway, load_config, parse_config
from dragoman.net.http import DEFAULT_POOL


def test_defaults_serve_echo() -> None:
    gw = build_gateway(parse_config(None))
    assert [d.name for d in gw.models.listed()] == ["dragoman/echo", "echo"]
    assert gw.auth is None


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"provider.*\$\.models\[0\]"):
        parse_config({"models": [{"name": "m", "provder": "openai"}]})
    with pytest.raises(ConfigError, match=r"base_ulr.*\$\.models\[1\]"):
        build_gateway(parse_config({"models": [
            {"name": "a", "provider": "echo"},
            {"name": "m", "provider": "openai", "model": "x", "base_ulr": "http://x"}]}))
    with pytest.raises(ConfigError, match=r"servr"):
        parse_config({"servr": {}})


def test_wrong_type_is_named() -> None:
    with pytest.raises(ConfigError, match=r"\$\.server\.port"):
        parse_config({"server": {"port": "eighty"}})


def test_unknown_provider_and_missing_model() -> None:
    with pytest.raises(ConfigError, match=r"unknown provider 'nope' at `\$\.models\[0\]\.provider`"):
        parse_config({"models": [{"name": "m", "provider": "nope"}]})
    with pytest.raises(ConfigError, match=r"\$\.models\[0\]\.model"):
        parse_config({"models": [{"name": "m", "provider": "openai"}]})
    with pytest.raises(ConfigError, match="duplicate model name"):
        parse_config({"models": [{"name": "m", "provider": "echo"}, {"name": "m", "provider": "echo"}]})


def test_env_interpolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UP_KEY", "sk-very-secret")
    cfg = parse_config({"models": [{"name": "m", "provider": "openai", "model": "gpt",
                                    "api_key": "${UP_KEY}", "base_url": "${UP_URL:-http://x/v1}"}]})
    assert cfg.models[0].api_key == "sk-very-secret"
    assert cfg.models[0].base_url == "http://x/v1"
    assert "sk-very-secret" not in repr(cfg.models[0])
    provider = build_gateway(cfg).models.resolve("m").provider
    assert "sk-very-secret" not in repr(provider)


def test_missing_env_names_variable_and_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_VAR", raising=False)
    with pytest.raises(ConfigError, match=r"NOT_SET_VAR.*\$\.models\[0\]\.api_key"):
        parse_config({"models": [{"name": "m", "provider": "openai", "model": "x",
                                  "api_key": "${NOT_SET_VAR}"}]})


def test_yaml_file_and_cli_exit_code(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("server: {port: 9999}\nmodels:\n  - {name: a, provider: echo}\n")
    assert load_config(good).server.port == 9999
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - {name: a, provider: echo, colour: red}\n")
    r = subprocess.run([sys.executable, "-m", "dragoman.cli", "serve", "--config", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "colour" in r.stderr and "$.models[0]" in r.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_capabilities_are_validated_and_used() -> None:
    cfg = parse_config({"models": [{"name": "m", "provider": "echo",
                                    "capabilities": {"max_context_tokens": 1000,
                                                     "input_cost_per_mtok": 2.5}}]})
    caps = build_gateway(cfg).models.resolve("m").provider.capabilities()
    assert caps.max_context_tokens == 1000 and caps.cost(1_000_000, 0) == 2.5
    with pytest.raises(ConfigError, match=r"max_contxt.*\$\.models\[0\]\.capabilities"):
        parse_config({"models": [{"name": "m", "provider": "echo",
                                  "capabilities": {"max_contxt": 1}}]})


def test_deployment_pool_size_reaches_its_http_client() -> None:
    gw = build_gateway(parse_config({"models": [
        {"name": "a", "provider": "openai", "model": "x", "base_url": "http://127.0.0.1:9/v1",
         "max_connections": 7},
        {"name": "b", "deployments": [
            {"provider": "anthropic", "model": "y", "base_url": "http://127.0.0.1:9"},
            {"provider": "http_generic", "url": "http://127.0.0.1:9/gen", "max_connections": 3,
             "template": '{"prompt": {{ prompt }}}', "response": {"text": "/text"}}]}]}))
    pools = [d.provider.http._limit for d in gw.models.deployments()]  # type: ignore[attr-defined]
    assert pools == [7, DEFAULT_POOL, 3]
    with pytest.raises(ConfigError, match=r"max_connections"):
        parse_config({"models": [{"name": "a", "provider": "echo", "max_connections": 0}]})
