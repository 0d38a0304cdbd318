"""Shared fixtures: a private data folder, generated PDFs, a tiny random model and the real bundled model.

Nothing here touches the network: HF_HUB_OFFLINE is set before transformers is imported.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import pdfs  # noqa: E402  (tests/pdfs.py: PDF builders)


@pytest.fixture(scope="session")
def session_home(tmp_path_factory) -> Path:
    """A data folder shared by the session so the bundled model is converted once."""
    home = tmp_path_factory.mktemp("docfocus-home")
    os.environ["DOCFOCUS_HOME"] = str(home)
    return home


@pytest.fixture(autouse=True)
def _home(session_home, monkeypatch):
    monkeypatch.setenv("DOCFOCUS_HOME", str(session_home))
    yield


@pytest.fixture()
def library(tmp_path):
    from engine.library.documents import Library

    return Library(tmp_path / "library.sqlite")


@pytest.fixture(scope="session")
def bundled_dir(session_home) -> Path:
    """The bundled model converted to safetensors (once per session)."""
    from engine.model.loading import converted_bundled_dir

    return converted_bundled_dir()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, bundled_dir) -> Path:
    """A tiny random Llama (GQA: 4 query heads, 2 KV heads) with the bundled tokenizer, saved as a folder."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"), bundled_dir)


def make_tiny_model(folder: Path, tokenizer_dir: Path, window: int = 2048, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         max_position_embeddings=window, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True, initializer_range=0.5)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Special and whitespace-only tokens score 0, below the best random token: answers are (random) words that
    # run to their length limit, so streaming and Stop have something to show and to stop.
    blank = [i for i in range(len(tokenizer)) if not tokenizer.decode([i]).strip()]
    with torch.no_grad():
        model.get_input_embeddings().weight[sorted(set(blank) | set(tokenizer.all_special_ids))] = 0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir, tmp_path_factory):
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"max_new_tokens": 8}),
                    library=Library(tmp_path_factory.mktemp("tiny-lib") / "library.sqlite"))
    engine.load()
    return engine


@pytest.fixture(scope="session")
def bundled_engine(bundled_dir, tmp_path_factory):
    """The real bundled model, loaded once for the whole session."""
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    engine = Engine(EngineSettings(device="cpu").changed(answer={"max_new_tokens": 40}),
                    library=Library(tmp_path_factory.mktemp("bundled-lib") / "library.sqlite"))
    engine.load()
    return engine


@pytest.fixture()
def fact_pdf(tmp_path) -> Path:
    return pdfs.fact_pdf(tmp_path / "facts.pdf")
