"""Both supported ASGI servers run the gateway: uvicorn (the default) and granian
(``dragoman serve --server granian``)."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.conftest import API_KEY, ECHO_CONFIG
from tests.gateway_proc import run_gateway


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_serves_under(server: str, tmp_path: Path) -> None:
    with run_gateway(ECHO_CONFIG, tmp_path, server=server) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key=API_KEY, max_retries=0)
        r = client.chat.completions.create(
            model="dragoman/echo", messages=[{"role": "user", "content": f"hello {server}"}])
        assert r.choices[0].message.content == f"hello {server}"
        with client.responses.stream(model="dragoman/echo", input="streamed here") as s:
            assert s.get_final_response().output_text == "streamed here"
