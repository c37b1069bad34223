"""Imports go one way: kernel <- runtime <- stages | connectors <- composition root.

The contract is ``[tool.importlinter]`` in pyproject.toml (docs/operations.md, "Layers");
these tests run import-linter on it, so the test suite fails when a lower layer imports a
higher one, when a stage imports another stage, or when a new module belongs to no layer.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = ("import sys; from importlinter.cli import lint_imports_command; "
                "sys.exit(lint_imports_command())")


def lint_imports(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A subprocess: import-linter reads the packages from the working directory, and its
    # report (the offending import chains with line numbers) is the failure message.
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--no-logo", str(config)],
        cwd=cwd, env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False)


def contract_layers() -> list[str]:
    """The layers of pyproject.toml's contract, highest first."""
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    [contract] = [c for c in config["contracts"] if c["id"] == "layers"]
    return list(contract["layers"])


def test_no_layer_imports_a_higher_one() -> None:
    result = lint_imports(PYPROJECT, ROOT)
    assert result.returncode == 0, f"the layering is broken:\n{result.stdout}{result.stderr}"
    assert "0 broken" in result.stdout


def test_every_module_belongs_to_a_layer() -> None:
    """A new module must be placed in a layer, or the contract would not look at it."""
    layers = contract_layers()
    layered = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    modules = {f"pipeline.{p.stem}" for p in (ROOT / "pipeline").glob("*.py")
               if p.stem != "__init__"}
    packages = {f"pipeline.{p.parent.name}" for p in (ROOT / "pipeline").glob("*/__init__.py")}
    unplaced = sorted((modules | packages | {"connectors"}) - layered)
    assert unplaced == [], f"modules in no layer of pyproject.toml's contract: {unplaced}"
    assert len(layers) == 4, "kernel, runtime, stages and connectors, composition root"


def test_the_check_fails_when_a_lower_layer_imports_a_higher_one(tmp_path: Path) -> None:
    """The same kind of contract on a toy package: the kernel reaching up into the runtime,
    and one stage importing another, are both reported."""
    toy = tmp_path / "toy"
    for package in ("", "stage_a", "stage_b"):
        (toy / package).mkdir(exist_ok=True)
        (toy / package / "__init__.py").write_text("")
    (toy / "envelope.py").write_text("from toy.stage import utcnow\n")
    (toy / "stage.py").write_text("def utcnow() -> None: ...\n")
    (toy / "stage_a" / "core.py").write_text("from toy import envelope\n")
    (toy / "stage_b" / "core.py").write_text("from toy.stage_a import core\n")
    config = tmp_path / ".importlinter"
    config.write_text(textwrap.dedent("""\
        [importlinter]
        root_package = toy

        [importlinter:contract:layers]
        name = kernel <- runtime <- stages
        type = layers
        layers =
            toy.stage_a | toy.stage_b
            toy.stage
            toy.envelope
        """))

    result = lint_imports(config, tmp_path)

    assert result.returncode != 0
    assert "toy.envelope -> toy.stage (l.1)" in result.stdout
    assert "toy.stage_b.core -> toy.stage_a.core (l.1)" in result.stdout
