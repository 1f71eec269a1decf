"""The top-level ``fetch:`` section: validated like the rest, normalised, and handed to
the providers that fetch media themselves (Bedrock here)."""

from __future__ import annotations

import pytest

from dragoman.config import ConfigError, build_gateway, parse_config
from dragoman.net.fetch import FetchPolicy


def test_defaults_and_normalisation() -> None:
    assert parse_config({}).fetch.image_policy() == FetchPolicy(
        allowed_content_types=("image/",))
    cfg = parse_config({"fetch": {"allow_hosts": [" Images.Internal.Example. ", "[::1]",
                                                  "10.1.2.3"],
                                  "max_bytes": 1000, "timeout": 2.5, "max_redirects": 0}})
    assert cfg.fetch.image_policy() == FetchPolicy(
        max_bytes=1000, timeout=2.5, max_redirects=0, allowed_content_types=("image/",),
        allow_hosts=frozenset({"images.internal.example", "::1", "10.1.2.3"}))


@pytest.mark.parametrize(("fetch", "where"), [
    ({"allowhosts": []}, "allowhosts"),
    ({"max_bytes": 0}, "max_bytes"),
    ({"timeout": -1}, "timeout"),
    ({"allow_hosts": "example.com"}, "allow_hosts"),
])
def test_mistakes_are_named(fetch: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        parse_config({"fetch": fetch})


def test_the_policy_reaches_the_bedrock_provider() -> None:
    cfg = parse_config({
        "fetch": {"allow_hosts": ["img.internal"], "max_bytes": 4096},
        "models": [{"name": "br", "provider": "bedrock", "model": "m", "region": "us-east-1",
                    "api_key": "k"}]})
    provider = build_gateway(cfg).models.resolve("br").provider
    policy = provider._fetch_policy  # type: ignore[attr-defined]
    assert policy.allow_hosts == frozenset({"img.internal"}) and policy.max_bytes == 4096
    # Bedrock takes documents as bytes too: it widens the accepted content types
    assert "image/" in policy.allowed_content_types
    assert "application/pdf" in policy.allowed_content_types
