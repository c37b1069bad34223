"""Settings: YAML + environment, errors naming file, key and line."""

import pytest

from pipeline.configfile import parse_yaml, validate
from pipeline.errors import ConfigError
from pipeline.route.config import RouteConfig
from pipeline.settings import config_path, load_settings


def test_defaults_mean_embedded_broker(monkeypatch):
    monkeypatch.delenv("PIPELINE_KAFKA_BOOTSTRAP", raising=False)
    settings = load_settings(None)
    assert settings.embedded_broker
    assert settings.kafka.retention_days == 180


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = tmp_path / "pipeline.yaml"
    path.write_text("kafka:\n  bootstrap: file-broker:9092\n  partitions: 8\n")
    monkeypatch.setenv("PIPELINE_KAFKA_BOOTSTRAP", "env-broker:9092")
    monkeypatch.setenv("PIPELINE_WORKER_APP_ID", "support-eu")
    monkeypatch.setenv("PIPELINE_CHAT_SECRET", "s3cret")
    settings = load_settings(path)
    assert settings.kafka.bootstrap == "env-broker:9092"
    assert settings.kafka.partitions == 8
    assert settings.worker.app_id == "support-eu"
    assert settings.chat.secret.get_secret_value() == "s3cret"
    assert not settings.embedded_broker


def test_invalid_value_names_file_line_and_key(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("kafka:\n  topic_prefix: x.\n  partitions: zero\nhttp:\n  port: 8080\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert f"{path}:3 kafka.partitions" in str(info.value)


def test_unknown_section_is_an_error(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("kafak:\n  bootstrap: x\n")
    with pytest.raises(ConfigError, match=r"pipeline.yaml:1 kafak"):
        load_settings(path)


def test_bad_environment_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_HTTP_PORT", "eighty")
    with pytest.raises(ConfigError, match="environment variable PIPELINE_HTTP_PORT"):
        load_settings(None)


def test_yaml_syntax_error_has_line(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("kafka:\n  bootstrap: [a,\n  partitions: 2\n")
    with pytest.raises(ConfigError, match=r"pipeline.yaml:\d+: invalid YAML"):
        load_settings(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml")


def test_validate_reports_nested_list_item_line():
    doc = parse_yaml("rules_path: x\nreload_interval_seconds: -1\n", "routing.yaml")
    with pytest.raises(ConfigError, match=r"routing.yaml:2 reload_interval_seconds"):
        validate(RouteConfig, doc)


def test_config_path_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_CONFIG", str(tmp_path / "env.yaml"))
    assert config_path("explicit.yaml").name == "explicit.yaml"
    assert config_path(None).name == "env.yaml"


def test_worker_stages_come_from_the_command_line_then_the_config(monkeypatch):
    from pipeline.cli import build_parser
    from pipeline.tools import chosen_stages

    monkeypatch.setenv("PIPELINE_WORKER_STAGES", '["transcribe"]')
    settings = load_settings(None)
    parser = build_parser()
    assert chosen_stages(parser.parse_args(["worker"]), settings) == ["transcribe"]
    assert chosen_stages(parser.parse_args(["worker", "--stages", "identify,dedup"]),
                         settings) == ["identify", "dedup"]
    monkeypatch.delenv("PIPELINE_WORKER_STAGES")
    assert chosen_stages(parser.parse_args(["run"]), load_settings(None)) is None


def test_a_command_talks_to_the_configured_broker(monkeypatch):
    from pipeline import broker

    monkeypatch.delenv("PIPELINE_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setattr(broker, "running_embedded_bootstrap", lambda: "127.0.0.1:1")
    settings = load_settings(None, kafka={"bootstrap": "kafka:9092"})
    assert broker.with_broker(settings).kafka.bootstrap == "kafka:9092"


def test_a_command_finds_the_broker_of_a_running_pipeline_run(monkeypatch):
    from pipeline import broker
    from pipeline.settings import Settings

    monkeypatch.delenv("PIPELINE_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setattr(broker, "running_embedded_bootstrap", lambda: "127.0.0.1:49152")
    settings = load_settings(None, kafka={"topic_prefix": "eu."})
    found = broker.with_broker(settings)
    assert isinstance(found, Settings)
    assert (found.kafka.bootstrap, found.kafka.embedded, found.kafka.topic_prefix) == (
        "127.0.0.1:49152", True, "eu.")
    assert found.chat == settings.chat


def test_without_a_broker_a_command_says_how_to_get_one(monkeypatch):
    from pipeline import broker

    monkeypatch.delenv("PIPELINE_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setattr(broker, "running_embedded_bootstrap", lambda: None)
    with pytest.raises(ConfigError, match="PIPELINE_KAFKA_BOOTSTRAP"):
        broker.with_broker(load_settings(None))


def test_names_moved_down_a_layer_are_importable_from_their_old_homes():
    from pipeline import broker, caseevents, clock, runtime_settings, settings, stage, tools
    from pipeline.dedup import core

    assert settings.KafkaSettings is runtime_settings.KafkaSettings
    assert settings.WorkerSettings is runtime_settings.WorkerSettings
    assert tools.with_broker is broker.with_broker
    assert core.CaseEvent is caseevents.CaseEvent
    assert stage.utcnow().tzinfo == clock.utcnow().tzinfo
