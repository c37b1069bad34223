"""Worker start-up: seconds from spawning `pipeline worker` to its `worker_ready` line.

    .venv/bin/python bench/startup.py [--runs 5] [--stages ingest]

Against the embedded broker, with the settings' defaults (session timeout 6 s). The figure
includes Python start and imports; faust's defaults took ~30 s here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.broker import EmbeddedBroker  # noqa: E402


def time_to_ready(bootstrap: str, stages: str, prefix: str) -> float:
    env = {**os.environ, "PIPELINE_KAFKA_BOOTSTRAP": bootstrap,
           "PIPELINE_KAFKA_EMBEDDED": "true", "PYTHONPATH": str(ROOT),
           "PIPELINE_KAFKA_TOPIC_PREFIX": prefix, "PIPELINE_WORKER_APP_ID": f"startup-{prefix}"}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "--stages", stages],
                            cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if "event=worker_ready" in line:
                return time.monotonic() - started
        raise SystemExit("worker exited before it was ready")
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stages", default="ingest")
    args = parser.parse_args()
    with EmbeddedBroker() as broker:
        figures = [time_to_ready(broker.bootstrap, args.stages, f"s{i}.") for i in range(args.runs)]
    print("runs: " + " ".join(f"{f:.2f}" for f in figures))
    print(f"worker spawn → ready: median {statistics.median(figures):.2f} s, "
          f"min {min(figures):.2f} s, max {max(figures):.2f} s ({args.runs} runs, "
          f"stages={args.stages})")


if __name__ == "__main__":
    main()
