"""docker-compose.yml parses, and its services' settings match the configuration model.

No Docker engine runs here: this checks the file, not the deployment.
"""

from pathlib import Path

import pytest
import yaml

from pipeline.cli import build_parser
from pipeline.settings import ENV_PREFIX, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PIPELINE_SERVICES = {name: svc for name, svc in COMPOSE["services"].items() if "build" in svc}


def resolve(value: object) -> str:
    # ${VAR:-default} and ${VAR:?message} as compose would expand them with VAR unset/set.
    text = str(value)
    if text.startswith("${") and ":-" in text:
        return text.split(":-", 1)[1].rstrip("}")
    if text.startswith("${"):
        return "configured-secret"
    return text


def test_kafka_runs_in_kraft_mode():
    env = COMPOSE["services"]["kafka"]["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "ZOOKEEPER" not in " ".join(env)


@pytest.mark.parametrize("name", sorted(PIPELINE_SERVICES))
def test_service_settings_are_valid(name, monkeypatch):
    service = PIPELINE_SERVICES[name]
    env = {key: resolve(value) for key, value in service["environment"].items()}
    assert all(key.startswith(ENV_PREFIX) for key in env), "only PIPELINE_* settings"
    for key in list(__import__("os").environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(None)
    assert settings.kafka.bootstrap == "kafka:9092"
    assert not settings.embedded_broker
    # Every variable landed on a real setting (a typo would be silently ignored otherwise).
    dumped = settings.model_dump(mode="json")
    for key, value in env.items():
        section, _, field = key.removeprefix(ENV_PREFIX).lower().partition("_")
        assert field in dumped[section], f"{key} is not a setting"
        expected = yaml.safe_load(value)
        if isinstance(expected, dict):  # a nested object given as JSON: each of its keys landed
            nested = getattr(getattr(settings, section), field)
            for name, wanted in expected.items():
                got = getattr(nested, name)
                assert (got.get_secret_value() if hasattr(got, "get_secret_value") else got) == wanted
            continue
        current = settings.model_dump()[section][field]
        current = current.get_secret_value() if hasattr(current, "get_secret_value") else current
        assert str(current).lower() == value.lower() or str(current) == str(expected)


@pytest.mark.parametrize("name", sorted(PIPELINE_SERVICES))
def test_service_command_is_a_valid_cli_invocation(name):
    args = build_parser().parse_args(PIPELINE_SERVICES[name]["command"])
    assert callable(args.func)
