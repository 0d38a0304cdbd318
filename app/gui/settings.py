"""Engine settings persisted with QSettings, and the Settings dialog that edits them."""
from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from engine.api import EngineSettings

MODEL_KINDS = [("bundled", "Bundled (SmolLM2-135M-Instruct, offline)"), ("folder", "A local model folder"),
               ("gguf", "A GGUF file"), ("hub", "A Hugging Face hub id")]
DEVICES = ["auto", "cpu", "cuda", "mps"]
ATTENTION_MODES = [("dga", "Dynamic Group Attention (DGA)"), ("dense", "Dense (full attention)")]
GIB = 1024**3
LONG_DOCUMENTS = [("select", "Read all of it, answer from the best passages"),
                  ("truncate", "Answer from the part that fits the window")]


def default_qsettings() -> QSettings:
    return QSettings("DocFocus", "DocFocus")


def load_engine_settings(store: QSettings) -> EngineSettings:
    """The saved engine settings, defaults for anything missing or unreadable."""
    base = EngineSettings()
    model = str(store.value("engine/model", "") or "")

    def number(key: str, default, kind):
        try:
            return kind(store.value(key, default))
        except (TypeError, ValueError):
            return default

    return replace(base, model=model if model and model != "bundled" else None,
                   device=str(store.value("engine/device", base.device)),
                   attention_mode=str(store.value("engine/attention_mode", base.attention_mode)),
                   gamma=number("engine/gamma", base.gamma, float),
                   group_size=number("engine/group_size", base.group_size, int),
                   cache_cap_bytes=number("engine/cache_cap_bytes", base.cache_cap_bytes, int),
                   max_new_tokens=number("engine/max_new_tokens", base.max_new_tokens, int),
                   long_documents=str(store.value("engine/long_documents", base.long_documents)))


def save_engine_settings(store: QSettings, settings: EngineSettings) -> None:
    store.setValue("engine/model", settings.model or "")
    store.setValue("engine/device", settings.device)
    store.setValue("engine/attention_mode", settings.attention_mode)
    store.setValue("engine/gamma", float(settings.gamma))
    store.setValue("engine/group_size", int(settings.group_size))
    store.setValue("engine/cache_cap_bytes", int(settings.cache_cap_bytes))
    store.setValue("engine/max_new_tokens", int(settings.max_new_tokens))
    store.setValue("engine/long_documents", settings.long_documents)
    store.sync()


def model_kind(model: str | None) -> str:
    if not model or model == "bundled":
        return "bundled"
    if model.lower().endswith(".gguf"):
        return "gguf"
    from pathlib import Path

    return "folder" if Path(model).exists() else "hub"


class SettingsDialog(QDialog):
    """Model, device, attention mode (gamma, group size), cache cap and Clear cache.

    ``sig_clear_cache()`` asks the main window to clear the state cache; the button
    is hidden when the engine has no cache to clear.
    """

    sig_clear_cache = Signal()

    def __init__(self, settings: EngineSettings, can_clear_cache: bool, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("DocFocus settings")
        self._original = settings
        form = QFormLayout()
        self.model_kind = QComboBox()
        for key, label in MODEL_KINDS:
            self.model_kind.addItem(label, key)
        self.model_path = QLineEdit(settings.model or "")
        self.model_path.setPlaceholderText("folder, .gguf file or hub id such as HuggingFaceTB/SmolLM2-360M-Instruct")
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_path, 1)
        model_row.addWidget(self.browse)
        model_widget = QWidget()
        model_widget.setLayout(model_row)
        model_row.setContentsMargins(0, 0, 0, 0)
        self.model_kind.currentIndexChanged.connect(self._kind_changed)
        self.model_kind.setCurrentIndex([k for k, _ in MODEL_KINDS].index(model_kind(settings.model)))
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.device if settings.device in DEVICES else "auto")
        self.attention = QComboBox()
        for key, label in ATTENTION_MODES:
            self.attention.addItem(label, key)
        self.attention.setCurrentIndex(max(0, [k for k, _ in ATTENTION_MODES].index(settings.attention_mode)
                                           if settings.attention_mode in dict(ATTENTION_MODES) else 0))
        self.gamma = QDoubleSpinBox(decimals=3, minimum=0.0, maximum=1.0, singleStep=0.01, value=settings.gamma)
        self.gamma.setToolTip("Fraction of the document's tokens kept exactly (focal tokens); 1 = dense")
        self.group_size = QSpinBox(minimum=1, maximum=512, value=settings.group_size)
        self.group_size.setToolTip("The other tokens are folded into groups of this many")
        self.attention.currentIndexChanged.connect(self._mode_changed)
        self.cache_cap = QDoubleSpinBox(decimals=1, minimum=0.1, maximum=1024.0, suffix=" GiB",
                                        value=settings.cache_cap_bytes / GIB)
        self.max_new_tokens = QSpinBox(minimum=1, maximum=4096, value=settings.max_new_tokens)
        self.long_documents = QComboBox()
        for key, label in LONG_DOCUMENTS:
            self.long_documents.addItem(label, key)
        self.long_documents.setCurrentIndex(max(0, [k for k, _ in LONG_DOCUMENTS].index(settings.long_documents)
                                                if settings.long_documents in dict(LONG_DOCUMENTS) else 0))
        self.long_documents.setToolTip("For a document longer than the model's window")
        self.clear_cache_button = QPushButton("Clear cache")
        self.clear_cache_button.setToolTip("Delete every stored document state (documents are read again)")
        self.clear_cache_button.clicked.connect(self.sig_clear_cache)
        self.clear_cache_button.setVisible(can_clear_cache)
        cache_row = QHBoxLayout()
        cache_row.setContentsMargins(0, 0, 0, 0)
        cache_row.addWidget(self.cache_cap, 1)
        cache_row.addWidget(self.clear_cache_button)
        cache_widget = QWidget()
        cache_widget.setLayout(cache_row)
        form.addRow("Model", self.model_kind)
        form.addRow("", model_widget)
        form.addRow("Device", self.device)
        form.addRow("Attention", self.attention)
        form.addRow("Gamma (focal share)", self.gamma)
        form.addRow("Group size", self.group_size)
        form.addRow("Long documents", self.long_documents)
        form.addRow("State cache cap", cache_widget)
        form.addRow("Longest answer (tokens)", self.max_new_tokens)
        note = QLabel("A new model or device takes effect with the next question.")
        note.setEnabled(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self._kind_changed()
        self._mode_changed()

    def _kind_changed(self, *_) -> None:
        kind = self.model_kind.currentData()
        self.model_path.setEnabled(kind != "bundled")
        self.browse.setEnabled(kind in ("folder", "gguf"))

    def _mode_changed(self, *_) -> None:
        dga = self.attention.currentData() == "dga"
        self.gamma.setEnabled(dga)
        self.group_size.setEnabled(dga)

    def _browse(self) -> None:
        if self.model_kind.currentData() == "folder":
            path = QFileDialog.getExistingDirectory(self, "Model folder")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.model_path.setText(path)

    def result_settings(self) -> EngineSettings:
        kind = self.model_kind.currentData()
        model = self.model_path.text().strip() if kind != "bundled" else None
        return replace(self._original, model=model or None, device=self.device.currentText(),
                       attention_mode=self.attention.currentData(), gamma=self.gamma.value(),
                       group_size=self.group_size.value(), cache_cap_bytes=int(self.cache_cap.value() * GIB),
                       max_new_tokens=self.max_new_tokens.value(), long_documents=self.long_documents.currentData())
