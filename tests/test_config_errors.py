"""Config errors point into the file: each names the file, the line and the path, and an
unknown key, value, provider or model reference comes with the closest known name — at any
depth, for type errors, and for the checks made after parsing (providers, agents,
fallbacks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dragoman.config import ConfigError, check_config, load_config
from dragoman.config_errors import did_you_mean
from tests.cli_proc import dragoman

CASES = [
    pytest.param("server:\n  port: 8080\nmodles:\n  - {name: m, provider: echo}\n",
                 3, "unknown field `modles` - at `$`", "did you mean `models`?", id="top-level"),
    pytest.param("models:\n  - name: m\n    provder: openai\n    model: gpt\n",
                 3, "- at `$.models[0]`; unknown field `provder`", "did you mean `provider`?",
                 id="model-key"),
    pytest.param("models:\n  - name: m\n    provider: openai\n    model: gpt\n"
                 "    bse_url: http://127.0.0.1:1/v1\n",
                 5, "unknown field `bse_url` - at `$.models[0]`", "did you mean `base_url`?",
                 id="checked-by-the-provider"),
    pytest.param("models:\n  - name: m\n    provider: bedrock\n    model: x\n"
                 "    region: eu-west-3\n    profle: team\n",
                 6, "unknown field `profle` - at `$.models[0]`", "did you mean `profile`?",
                 id="provider-specific-key"),
    pytest.param("models:\n  - name: m\n    deployments:\n      - provider: echo\n"
                 "      - provider: openai\n        model: gpt\n        wieght: 2\n",
                 7, "unknown field `wieght` - at `$.models[0].deployments[1]`",
                 "did you mean `weight`?", id="deployment-key"),
    pytest.param("models:\n  - name: m\n    provider: echo\n    capabilities:\n"
                 "      max_contxt_tokens: 5\n",
                 5, "unknown field `max_contxt_tokens` - at `$.models[0].capabilities`",
                 "did you mean `max_context_tokens`?", id="nested"),
    pytest.param("auth:\n  type: static\n  tokens:\n    - tenant: a\n      token: t\n"
                 "      tennant: b\n",
                 6, "unknown field `tennant` - at `$.auth.tokens[0]`", "did you mean `tenant`?",
                 id="deep-in-auth"),
    pytest.param("auth:\n  type: statc\n  tokens: []\n",
                 2, "Invalid value 'statc' - at `$.auth.type`", "did you mean `static`?",
                 id="union-tag"),
    pytest.param("models:\n  - name: m\n    provider: echo\n    fallbacks: [m2]\n"
                 "    fallback_on: [rate_limited, overloded]\n  - {name: m2, provider: echo}\n",
                 5, "Invalid enum value 'overloded' - at `$.models[0].fallback_on[1]`",
                 "did you mean `overloaded`?", id="enum-in-a-list"),
    pytest.param("sessions:\n  backend: postgre\n",
                 2, "Invalid enum value 'postgre' - at `$.sessions.backend`",
                 "did you mean `postgres`?", id="literal"),
    pytest.param("server:\n  host: 127.0.0.1\n  port: eighty\n",
                 3, "Expected `int`, got `str` - at `$.server.port`", None, id="type"),
    pytest.param("models:\n  - name: m\n    provider: opnai\n    model: gpt\n",
                 3, "unknown provider 'opnai' at `$.models[0].provider`",
                 "did you mean `openai`?", id="provider-name"),
    pytest.param("models:\n  - name: gpt-4o\n    provider: echo\nagents:\n  - name: coder\n"
                 "    model: gpt-4\n",
                 6, "`$.agents[0].model`: 'gpt-4' is not a model", "did you mean `gpt-4o`?",
                 id="agent-model-reference"),
    pytest.param("models:\n  - name: smart\n    provider: echo\n    fallbacks: [claud]\n"
                 "  - name: claude\n    provider: echo\n",
                 4, "`$.models[0].fallbacks`: 'claud' is not another model",
                 "did you mean `claude`?", id="fallback-reference"),
    pytest.param("models:\n  - name: m\n    provider: echo\nagents:\n  - name: a\n    model: m\n"
                 "    tools:\n      - web_fetch\n      - bsh\n",
                 9, "'bsh'", None, id="agent-tool"),
    pytest.param("limits:\n  backend: redis\n  redis_url: http://:pw-secret@cache:6379\n",
                 3, "not a Redis URL (redis://, rediss:// or unix://) - at `$.limits.redis_url`",
                 None, id="redis-url"),
    pytest.param("models:\n  - name: m\n    provider: openai\n    model: gpt\n"
                 "    api_key: ${DRAGOMAN_TEST_UNSET_VAR}\n",
                 5, "DRAGOMAN_TEST_UNSET_VAR is not set (used at $.models[0].api_key)", None,
                 id="environment"),
]


@pytest.mark.parametrize(("text", "line", "says", "hint"), CASES)
def test_every_error_names_file_line_path_and_the_closest_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        text: str, line: int, says: str, hint: str | None) -> None:
    monkeypatch.delenv("DRAGOMAN_TEST_UNSET_VAR", raising=False)
    f = tmp_path / "dragoman.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        check_config(f)
    message = str(info.value)
    assert message.startswith(f"{f}:{line}: "), message
    assert says in message
    if hint is not None:
        assert message.endswith(f"({hint})"), message
    assert "\n" not in message and "secret" not in message


def test_load_config_locates_its_errors_too(tmp_path: Path) -> None:
    f = tmp_path / "dragoman.yaml"
    f.write_text("# a comment\n\nsessions:\n  backend: sqlite\n  tll: 7d\n")
    with pytest.raises(ConfigError, match=r":5: .*`tll` - at `\$\.sessions` \(did you mean "
                                          r"`ttl`\?\)$"):
        load_config(f)


def test_a_yaml_syntax_error_is_one_line_with_its_position(tmp_path: Path) -> None:
    f = tmp_path / "dragoman.yaml"
    f.write_text("models:\n  - name: m\n   provider: echo\n")
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert str(info.value).startswith(f"{f}:3:4: not valid YAML: ")
    assert "\n" not in str(info.value) and "<unicode string>" not in str(info.value)


def test_no_suggestion_when_nothing_is_close() -> None:
    assert did_you_mean("zzzz", ["models", "server"]) == ""
    assert did_you_mean("servr", ["models", "server"]) == " (did you mean `server`?)"


def test_config_check_command_reports_the_located_error(tmp_path: Path) -> None:
    f = tmp_path / "dragoman.yaml"
    f.write_text("server:\n  port: 8080\nmodles:\n  - {name: m, provider: echo}\n")
    r = dragoman("config", "check", str(f))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == [
        f"dragoman: {f}:3: invalid configuration: Object contains unknown field `modles` "
        "- at `$` (did you mean `models`?)"]
    # serve stops on the same line, before anything listens
    r = dragoman("serve", "--config", str(f))
    assert r.returncode == 2 and "(did you mean `models`?)" in r.stderr


def test_a_dollar_in_a_value_does_not_hide_the_path(tmp_path: Path) -> None:
    f = tmp_path / "dragoman.yaml"
    f.write_text("models:\n  - name: m\n    provider: $openai\n    model: gpt\n")
    with pytest.raises(ConfigError) as info:
        load_config(f)
    assert str(info.value).startswith(f"{f}:3: unknown provider '$openai' at "
                                      "`$.models[0].provider`")
