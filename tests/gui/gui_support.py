"""GUI test support: isolated QSettings, generated multi-page PDFs, windows on the tiny model.

A plain module imported by the GUI tests, not a conftest.py: tests/conftest.py owns that module name
(tests import from it), and a second conftest would shadow it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pymupdf
import pytest
from PySide6.QtCore import QObject

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

NEEDLE = "zeppelin"
NEEDLE_PAGES = (3, 17, 17, 25)  # 0-based pages that hold the needle word (twice on page 17)


def book_pdf(path: Path, pages: int = 30) -> Path:
    """A book: numbered pages of text, a two-level outline, the needle word on ``NEEDLE_PAGES``."""
    document = pymupdf.open()
    for number in range(pages):
        page = document.new_page(width=595, height=842)
        page.insert_text((72, 72), f"Chapter {number // 5 + 1} page {number + 1}", fontsize=16)
        text = f"Alpha beta gamma delta on page {number + 1}. "
        needles = NEEDLE_PAGES.count(number)
        for line in range(12):
            extra = f" The {NEEDLE} flew over." if line < needles else ""
            page.insert_text((72, 120 + 24 * line), text + extra, fontsize=11)
    toc = []
    for chapter in range(pages // 5):
        toc.append([1, f"Chapter {chapter + 1}", chapter * 5 + 1])
        toc.append([2, f"Section {chapter + 1}.1", chapter * 5 + 3])
    document.set_toc(toc)
    document.set_metadata({"title": "The Test Book"})
    document.save(path)
    return path


@pytest.fixture()
def book(tmp_path) -> Path:
    return book_pdf(tmp_path / "book.pdf")


@pytest.fixture()
def qsettings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "docfocus.ini"), QSettings.Format.IniFormat)


@pytest.fixture(scope="session")
def gui_engine(tiny_model_dir, tmp_path_factory):
    """The tiny random model with room for long (gibberish) answers, so Stop has something to stop."""
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"max_new_tokens": 300}),
                    library=Library(tmp_path_factory.mktemp("gui-lib") / "library.sqlite"))
    engine.load()
    return engine


class Recorder(QObject):
    """Records a worker signal's arguments in the GUI thread. (A plain function connected to a worker's signal
    runs in the worker's thread, and pytest-qt's waitSignal disconnects it from there: wait on GUI state or on
    the window's own signals instead.)"""

    def __init__(self, signal) -> None:
        super().__init__()
        self.calls: list[tuple] = []
        signal.connect(self.record)

    def record(self, *args) -> None:
        self.calls.append(args)


def wait_open(qtbot, window, pages: int | None = None, timeout: int = 10_000) -> None:
    qtbot.waitUntil(lambda: window.view.page_count() > 0 and (pages is None or window.view.page_count() == pages),
                    timeout=timeout)


def close_window(window) -> None:
    window.close()


@pytest.fixture()
def make_window(qtbot, qsettings):
    """Build MainWindows that are closed (threads joined) after the test."""
    from app.gui.main_window import MainWindow

    windows = []

    def make(engine=None, auto_prepare: bool = False, settings=None):
        window = MainWindow(settings=settings if settings is not None else qsettings, engine=engine,
                            auto_prepare=auto_prepare)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()


def make_streaming_model(folder: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    """A tiny Llama that never stops on its own: its layers add nothing (zero output projections), so the next
    token depends only on the current one, and its output head maps every token to the next one in a single
    random cycle through the ordinary vocabulary. Greedy decoding then streams fresh tokens up to the length
    limit, which gives Stop something to stop (a random model repeats one token and is cut after a few)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    vocab, hidden = len(tokenizer), 256
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=4096,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    special = max(tokenizer.all_special_ids) + 1
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight  # (V, hidden)
        order = special + torch.randperm(vocab - special)
        head = torch.full((vocab, hidden), 0.0)
        head[order.roll(-1)] = embeddings[order]  # token order[i] -> order[i + 1]
        head[:special] = 0.0  # special tokens (end of text among them) score 0, below the next token's |e|^2
        model.lm_head.weight.copy_(head)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def streaming_engine(bundled_dir, tmp_path_factory):
    """An engine on ``make_streaming_model``: answers stream for as long as max_new_tokens allows."""
    from engine.api import Engine, EngineSettings
    from engine.library.documents import Library

    folder = make_streaming_model(tmp_path_factory.mktemp("streaming-llama"), bundled_dir)
    engine = Engine(EngineSettings(model=str(folder), device="cpu").changed(answer={"max_new_tokens": 2000}, attention={"mode": "dense"}),
                    library=Library(tmp_path_factory.mktemp("streaming-lib") / "library.sqlite"))
    engine.load()
    return engine


def drag_words(view, page: int, first: int, last: int) -> None:
    """Drag the mouse on ``view`` from the middle of word ``first`` to the middle of word ``last`` of ``page``."""
    from PySide6.QtCore import QEvent, QPointF, Qt
    from PySide6.QtGui import QGuiApplication, QMouseEvent

    def middle(index: int):
        word = view.words[page][index]
        point = view.pages[page].mapToScene(QPointF((word.x0 + word.x1) / 2, (word.y0 + word.y1) / 2))
        return view.mapFromScene(point)

    def send(kind, pos, buttons) -> None:
        event = QMouseEvent(kind, QPointF(pos), QPointF(view.viewport().mapToGlobal(pos)), Qt.MouseButton.LeftButton,
                            buttons, Qt.KeyboardModifier.NoModifier)
        QGuiApplication.sendEvent(view.viewport(), event)

    start, end = middle(first), middle(last)
    send(QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton)
    send(QEvent.Type.MouseMove, end, Qt.MouseButton.LeftButton)
    send(QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)
