"""Packaging rules (packaging/packaging_rules.py): size budget, trimming, and the shipped-model lookup."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "packaging"))

import packaging_rules as rules  # noqa: E402


def make_bundle(root: Path, files: dict[str, int]) -> Path:
    for name, size in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)
    return root


def test_size_report_totals_and_ranks_the_largest_parts(tmp_path):
    bundle = make_bundle(tmp_path / "DocFocus", {
        "docfocus": 300,
        "_internal/torch/lib/libtorch_cpu.so": 5000,
        "_internal/torch/lib/libc10.so": 1000,
        "_internal/torch/__init__.py": 10,
        "_internal/models/SmolLM2/model.safetensors": 4000,
        "_internal/libpython3.11.so": 700,
    })
    (bundle / "_internal" / "libpython.so").symlink_to("libpython3.11.so")  # links add nothing
    report = rules.size_report(bundle, budget=20_000)
    assert report.total == 300 + 5000 + 1000 + 10 + 4000 + 700
    assert not report.over_budget
    names = [name for name, _ in report.parts]
    assert names[:3] == ["_internal/torch/lib/", "_internal/models/SmolLM2/", "_internal/libpython3.11.so"]
    assert dict(report.parts)["_internal/torch/lib/"] == 6000
    assert dict(report.parts)["docfocus"] == 300
    # Parts do not overlap: they add up to the total.
    assert sum(size for _, size in report.parts) == report.total
    lines = report.lines(top=2)
    assert lines[0].startswith("Bundle size: 11.0 KB (budget 20.0 KB)") and len(lines) == 3


def test_budget_is_checked_at_the_byte(tmp_path):
    bundle = make_bundle(tmp_path / "DocFocus", {"docfocus": 10, "_internal/a.so": 990})
    assert not rules.size_report(bundle, budget=1000).over_budget
    assert rules.size_report(bundle, budget=999).over_budget
    assert rules.CPU_BUDGET_BYTES == 1_200_000_000


def test_size_report_needs_a_bundle(tmp_path):
    with pytest.raises(FileNotFoundError):
        rules.size_report(tmp_path / "missing")


def test_build_fails_over_budget_and_passes_under(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "packaging"))
    import build

    make_bundle(tmp_path / "DocFocus", {"docfocus": 10, "_internal/torch/lib/libtorch_cpu.so": 2_000_000})
    assert build.main(["--dist", str(tmp_path), "--size-only", "--budget-gb", "0.001"]) == 1
    assert "over the 0.001 GB budget" in capsys.readouterr().err
    assert build.main(["--dist", str(tmp_path), "--size-only", "--budget-gb", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "Bundle size: 2.0 MB" in out and "_internal/torch/lib/" in out


@pytest.mark.parametrize("dest, dropped", [
    ("torch/include/ATen/ATen.h", True),
    ("torch/test/test_api", True),
    ("torch/bin/test_jit", True),
    ("torch/bin/protoc", True),
    ("torch/bin/torch_shm_manager", False),
    ("torch/lib/libtorchbind_test.so", True),
    ("torch/lib/libtorch_cpu.so", False),
    ("PySide6/Qt/translations/qtbase_de.qm", True),
    ("PySide6/Qt/lib/libQt6Quick.so.6", True),
    ("PySide6/Qt/lib/libQt6Widgets.so.6", False),
    ("PySide6/Qt/plugins/platforms/libqoffscreen.so", False),
    ("pymupdf/mupdf-devel/include/mupdf/fitz.h", True),
    ("pymupdf/libmupdf.so.28.5", False),
    ("onnxruntime/capi/libonnxruntime.so.1.32.0", True),
    ("onnxruntime/capi/onnxruntime_pybind11_state.cpython-311-x86_64-linux-gnu.so", False),
    ("resources/sample.pdf", False),
    (os.path.join("torch", "include", "c10.h"), True),
])
def test_trim_rules(dest, dropped):
    assert rules.is_dropped(dest) is dropped
    assert rules.keep_binary(dest) is not dropped


def test_strippable_skips_auditwheel_libraries():
    assert rules.strippable("torch/lib/libtorch_cpu.so")
    assert rules.strippable("libpython3.11.so.1.0")
    assert not rules.strippable("numpy.libs/libscipy_openblas64_-32a4b2a6.so")
    assert not rules.strippable("resources/sample.pdf")


def test_strip_binaries_without_strip_tool_changes_nothing(tmp_path):
    toc = [("torch/lib/libx.so", str(tmp_path / "libx.so"), "BINARY")]
    assert rules.strip_binaries(toc, tmp_path, None) == toc


def test_unused_transformers_model_families_are_excluded(tmp_path):
    for name in ("llama", "qwen2", "whisper", "auto"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "__pycache__").mkdir()
    assert rules.transformers_models_excluded(tmp_path) == ["transformers.models.whisper"]
    assert {"llama", "auto"} <= rules.TRANSFORMERS_MODELS_KEPT


def test_frozen_app_finds_the_shipped_model_without_converting(tmp_path, monkeypatch):
    from engine.model import loading as models

    shipped = tmp_path / models.PRECONVERTED_SUBDIR
    shipped.mkdir(parents=True)
    monkeypatch.delenv("DOCFOCUS_BUNDLED_MODEL", raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert models.preconverted_bundled_dir() is None  # no docfocus.json stamp: not a finished conversion
    (shipped / "docfocus.json").write_text("{}")
    assert models.preconverted_bundled_dir() == shipped
    assert models.converted_bundled_dir() == shipped


def test_bundled_model_env_var_must_name_a_converted_folder(tmp_path, monkeypatch):
    from engine.errors import ModelLoadError
    from engine.model import loading as models

    monkeypatch.setenv("DOCFOCUS_BUNDLED_MODEL", str(tmp_path))
    with pytest.raises(ModelLoadError):
        models.preconverted_bundled_dir()
    (tmp_path / "docfocus.json").write_text("{}")
    assert models.converted_bundled_dir() == tmp_path


def test_packaging_files_exist():
    for name in ("packaging/docfocus.spec", "packaging/entry.py", "packaging/docfocus.iss",
                 "packaging/linux/install.sh", "packaging/linux/uninstall.sh", "packaging/linux/docfocus.desktop",
                 "resources/docfocus.png", "resources/docfocus.ico", "resources/docfocus.icns"):
        assert (ROOT / name).is_file(), name
    desktop = (ROOT / "packaging/linux/docfocus.desktop").read_text()
    assert "Exec=docfocus %f" in desktop and "Icon=docfocus" in desktop and "MimeType=application/pdf;" in desktop
