"""``recoworld doctor``: versions, extras, kernels, data, and whether an LLM endpoint answers —
against nothing, a closed port, and the real llama.cpp server of ``tests/test_llm_server.py``."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from recoworld import __version__
from recoworld.cli import main
from recoworld.llm.stub import free_port
from tests.test_llm_server import Server, stories  # noqa: F401  (the real server's fixture)

from .conftest import ROOT, run_cli, shared_dataset

SECRET = "sk-doctor-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["doctor", "-q", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def _closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # bound and released: nothing listens


def test_without_an_endpoint_it_lists_versions_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = _doctor(capsys)
    assert code == 0, out
    assert f"recoworld    {__version__}" in out
    assert f"numpy        {np.__version__}" in out
    for name in ("python", "numba", "pyarrow", "gymnasium", "pettingzoo", "browser"):
        assert name in out
    assert "kernels: ok" in out
    assert "LLM: no endpoint configured" in out
    assert "everything asked for works" in out


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _doctor(capsys, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["packages"]["recoworld"] == __version__
    assert report["packages"]["numpy"] == np.__version__
    assert report["kernels"]["ok"] is True
    assert report["llm"] is None
    assert report["data"] is None
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = set(pyproject["project"]["optional-dependencies"]) - {"test", "dev"}
    assert set(report["extras"]) == extras  # every extra of pyproject is checked
    assert report["extras"]["llm"]["available"] is True  # a test dependency
    assert report["extras"]["llm"]["install"] == "pip install 'recoworld[llm]'"


def test_an_endpoint_that_does_not_answer_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = _closed_url()
    code, out = _doctor(capsys, "--llm-base-url", url, "--timeout", "2")
    assert code == 1
    assert f"LLM: {url} FAILED — does not answer" in out
    assert "problems found:" in out


def test_openai_base_url_is_the_endpoint_when_no_flag_names_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _closed_url()
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    code, out = _doctor(capsys, "--json", "--timeout", "2")
    assert code == 1
    [endpoint] = json.loads(out)["llm"]["endpoints"]
    assert endpoint["url"] == url
    assert endpoint["ok"] is False


def test_credentials_in_the_url_are_not_printed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://user:{SECRET}@127.0.0.1:{port}/v1")
    code, out = _doctor(capsys, "--timeout", "2")
    assert code == 1
    assert SECRET not in out
    assert f"http://127.0.0.1:{port}/v1" in out


def test_data_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out = _doctor(capsys, "--data-dir", str(tmp_path / "missing"))
    assert code == 1
    assert "no such folder" in out
    data = shared_dataset("ml-latest-small").parent
    code, out = _doctor(capsys, "--json", "--data-dir", str(data))
    assert code == 0
    assert json.loads(out)["data"]["datasets"]["ml-latest-small"] == "movielens"


def test_the_real_llama_cpp_server_answers_with_its_model(
    stories: Server,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # sent, never printed
    code, out = _doctor(capsys, "--llm-base-url", stories.url, "--llm-model", "tiny")
    assert code == 0, out
    assert f"LLM: {stories.url} answered in" in out
    assert "models: tiny" in out
    assert SECRET not in out
    code, out = _doctor(capsys, "--json", "--llm-base-url", stories.url)
    assert SECRET not in out
    [endpoint] = json.loads(out)["llm"]["endpoints"]
    assert endpoint["ok"] is True
    assert endpoint["models"] == ["tiny"]
    assert endpoint["latency_ms"] > 0


def test_a_model_the_server_does_not_serve_exits_1(
    stories: Server,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = _doctor(capsys, "--llm-base-url", stories.url, "--llm-model", "gpt-nothing")
    assert code == 1
    assert "does not serve model 'gpt-nothing' (serves: tiny)" in out


def test_the_scenario_names_the_endpoint_from_the_command_line(
    stories: Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "llm.yaml"
    scenario.write_text(
        f"name: llm\nllm: {{fraction: 0.1, client: {{base_urls: [{stories.url}], model: tiny}}}}\n",
        encoding="utf-8",
    )
    proc = run_cli(["doctor", "--scenario", str(scenario), "--json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["llm"]["model"] == "tiny"
    assert report["llm"]["endpoints"][0]["models"] == ["tiny"]
