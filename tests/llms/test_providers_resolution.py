"""Model names → built-in provider adapters, and the errors for names that cannot work."""

from __future__ import annotations

import subprocess
import sys

import pytest

from afk.errors import ConfigurationError, ModelNotFoundError
from afk.llms import resolve_model
from afk.llms._providers import hint_for, resolve_builtin
from afk.llms.anthropic import AnthropicModel
from afk.llms.openai import OpenAIModel

ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OLLAMA_BASE_URL",
    "OLLAMA_HOST",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("o1-preview", "o1-preview"),
        ("o3-mini", "o3-mini"),
        ("o4-mini", "o4-mini"),
        ("openai:ft:gpt-4o:acme", "ft:gpt-4o:acme"),
    ],
)
def test_openai_names(monkeypatch: pytest.MonkeyPatch, name: str, model: str) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    found = resolve_builtin(name)
    assert isinstance(found, OpenAIModel)
    assert found.model == model and found.base_url == "https://api.openai.com/v1"


def test_openai_base_url_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1/")
    found = resolve_model("gpt-4o")
    assert isinstance(found, OpenAIModel) and found.base_url == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize("name", ["claude-sonnet-4-5", "anthropic:claude-opus-4-1"])
def test_anthropic_names(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-x")
    found = resolve_builtin(name)
    assert isinstance(found, AnthropicModel)
    assert found.model == name.removeprefix("anthropic:")


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("gpt-4o", "OPENAI_API_KEY"),
        ("openai:x", "OPENAI_API_KEY"),
        ("claude-x", "ANTHROPIC_API_KEY"),
    ],
)
def test_missing_key_is_one_line_configuration_error(name: str, variable: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_model(name)
    message = str(info.value)
    assert message.startswith(f"set {variable}") and "\n" not in message
    assert not isinstance(info.value, ModelNotFoundError)


@pytest.mark.parametrize(
    ("env", "url"),
    [
        ({}, "http://localhost:11434/v1"),
        ({"OLLAMA_HOST": "gpu-box:9999"}, "http://gpu-box:9999/v1"),
        ({"OLLAMA_HOST": "0.0.0.0"}, "http://0.0.0.0:11434/v1"),
        (
            {"OLLAMA_BASE_URL": "https://ollama.internal", "OLLAMA_HOST": "x"},
            "https://ollama.internal:11434/v1",
        ),
        ({"OLLAMA_BASE_URL": "http://h:1/v1"}, "http://h:1/v1"),
    ],
)
def test_ollama_needs_no_key(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    found = resolve_builtin("ollama:llama3.2")
    assert isinstance(found, OpenAIModel)
    assert found.model == "llama3.2" and found.base_url == url
    assert found.model_name == "ollama:llama3.2"


@pytest.mark.parametrize("name", ["mystery-model", "openai:", "mistral:large", "gemini-2.0"])
def test_unknown_names_resolve_to_none(name: str) -> None:
    assert resolve_builtin(name) is None


def test_unknown_name_hint_says_how_to_register_and_lists_prefixes() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("mystery-model")
    message = str(info.value)
    assert "register_model('mystery-model'" in message
    for prefix in ("gpt-*", "claude-*", "openai:", "anthropic:", "litellm:", "ollama:"):
        assert prefix in message
    assert "register_model" in hint_for("x")


def test_providers_module_imports_no_adapter_or_httpx() -> None:
    # Measured against `import afk.llms` so imports made by other parts of afk don't count.
    code = (
        "import sys, afk.llms\n"
        "before = set(sys.modules)\n"
        "import afk.llms._providers\n"
        "new = set(sys.modules) - before - {'afk.llms._providers'}\n"
        "print(sorted(m for m in new if m.startswith(('httpx', 'afk.llms.', 'litellm'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
