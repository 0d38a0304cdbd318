"""Build the packaged DocFocus app: ``python packaging/build.py`` (what ``make package`` runs).

1. converts the bundled model once into build/model-home (kept between builds),
2. runs PyInstaller on packaging/docfocus.spec -> dist/DocFocus/ (one folder, ``docfocus`` inside),
3. prints the bundle's size and its largest parts and fails above the budget (1.2 GB for the CPU
   build; ``--budget-gb 0`` turns the check off, e.g. for a CUDA build),
4. on Linux, packs dist/DocFocus-<version>-linux-<arch>.tar.gz with the .desktop file, the icon and
   the install/uninstall scripts (``--no-tarball`` skips it).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "packaging"), str(ROOT)]

from packaging_rules import CPU_BUDGET_BYTES, human, size_report  # noqa: E402

LINUX_FILES = ["install.sh", "uninstall.sh", "docfocus.desktop"]


def convert_model(home: Path) -> Path:
    """The bundled model converted to safetensors, in ``home`` (reused when already there)."""
    code = ("from engine.model.loading import converted_bundled_dir; print(converted_bundled_dir())")
    env = dict(os.environ, DOCFOCUS_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    env.pop("DOCFOCUS_BUNDLED_MODEL", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    return Path(out.strip().splitlines()[-1])


def half_embedder(target: Path) -> Path | None:
    """The passage embedder (engine/retrieval/meaning.py) saved in fp16 in ``target`` (half the size; it is read
    back as fp32), or None when its package is not installed."""
    code = ("import sys, torch; from transformers import AutoModel, AutoTokenizer; "
            "from engine.retrieval.meaning import model_folder; folder = model_folder(); "
            "folder is None and sys.exit(3); "
            "AutoModel.from_pretrained(folder).to(torch.float16).save_pretrained(sys.argv[1]); "
            "AutoTokenizer.from_pretrained(folder).save_pretrained(sys.argv[1])")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code, str(target)], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode == 3:
        return None
    if done.returncode != 0:
        raise SystemExit(f"could not prepare the passage embedder: {done.stderr[-1000:]}")
    return target


def run_pyinstaller(model: Path, dist: Path, work: Path) -> None:
    env = dict(os.environ, DOCFOCUS_PACKAGE_MODEL=str(model))
    embedder = half_embedder(work / "embedder")
    if embedder is not None:
        env["DOCFOCUS_PACKAGE_EMBEDDER"] = str(embedder)
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                    "--distpath", str(dist), "--workpath", str(work), str(ROOT / "packaging" / "docfocus.spec")],
                   env=env, cwd=ROOT, check=True)


def make_tarball(bundle: Path, dist: Path) -> Path:
    """dist/DocFocus-<version>-linux-<arch>.tar.gz: DocFocus/ plus the desktop integration files."""
    from engine import __version__

    name = f"DocFocus-{__version__}-linux-{platform.machine()}"
    stage = dist / name
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    # A hard-linked copy: instant and no extra disk; the bundle's own symlinks stay links.
    subprocess.run(["cp", "-al", str(bundle), str(stage / "DocFocus")], check=True)
    for file in LINUX_FILES:
        shutil.copy2(ROOT / "packaging" / "linux" / file, stage / file)
    shutil.copy2(ROOT / "resources" / "docfocus.png", stage / "docfocus.png")
    shutil.copy2(ROOT / "packaging" / "linux" / "INSTALL.txt", stage / "INSTALL.txt")
    shutil.copy2(ROOT / "LICENSE", stage / "LICENSE")
    tarball = dist / f"{name}.tar.gz"
    compressor = "pigz" if shutil.which("pigz") else "gzip"
    subprocess.run(["tar", "-c", "-I", compressor, "-f", str(tarball), "-C", str(dist), "--owner=0", "--group=0",
                    name], check=True)
    shutil.rmtree(stage)
    return tarball


def _children_peak_rss() -> int | None:
    """Largest resident memory of the finished child processes (model conversion, PyInstaller)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return kib * (1 if sys.platform == "darwin" else 1024)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller")
    parser.add_argument("--budget-gb", type=float, default=CPU_BUDGET_BYTES / 1e9,
                        help="fail if the bundle is larger (default 1.1 for the CPU build; 0: no check)")
    parser.add_argument("--no-tarball", action="store_true", help="skip the Linux .tar.gz")
    parser.add_argument("--size-only", action="store_true", help="only report the size of an existing bundle")
    args = parser.parse_args(argv)
    bundle = args.dist / "DocFocus"
    started = time.perf_counter()
    if not args.size_only:
        import torch

        print(f"Building DocFocus with torch {torch.__version__} "
              f"({'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU only'})", flush=True)
        model = convert_model(ROOT / "build" / "model-home")
        print(f"Bundled model: {model}", flush=True)
        run_pyinstaller(model, args.dist, args.work)
        peak = _children_peak_rss()
        print(f"PyInstaller finished in {time.perf_counter() - started:.0f} s"
              + (f" (peak memory {human(peak)})" if peak else ""), flush=True)
    report = size_report(bundle, int(args.budget_gb * 1e9) if args.budget_gb > 0 else 0)
    print("\n".join(report.lines()))
    if args.budget_gb > 0 and report.over_budget:
        print(f"FAILED: the bundle is {human(report.total)}, over the {args.budget_gb:g} GB budget", file=sys.stderr)
        return 1
    if sys.platform.startswith("linux") and not args.no_tarball and not args.size_only:
        tarball = make_tarball(bundle, args.dist)
        print(f"Tarball: {tarball} ({human(tarball.stat().st_size)})")
    if not args.size_only:
        print(f"Built {bundle / ('docfocus.exe' if os.name == 'nt' else 'docfocus')} "
              f"in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
