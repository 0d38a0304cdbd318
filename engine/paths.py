"""Where DocFocus keeps its data (library database, converted models).

``DOCFOCUS_HOME`` overrides the platform's user data folder; tests and the
self-test use it to stay out of the user's real data.
"""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    override = os.environ.get("DOCFOCUS_HOME")
    path = Path(override) if override else Path(platformdirs.user_data_dir("DocFocus", "DocFocus"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def library_path() -> Path:
    return data_dir() / "library.sqlite"


def models_dir() -> Path:
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
