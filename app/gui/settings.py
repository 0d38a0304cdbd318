"""Engine settings persisted with QSettings, and the Settings dialog, both built from ``engine.settings.OPTIONS``.

Every choice, label, help text and limit comes from the engine's option list (the command line's too),
so an option added there appears here without an edit: choices become a drop-down with plain labels
(the technical help as tooltips), limits become a spin box that cannot leave them, and ``advanced``
options go in the dialog's "Advanced" part. Only the model, which is not a plain choice, is laid out here.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.settings import OPTIONS, EngineSettings, Option, SettingsError

from .theme import secondary_text

MODEL_KINDS = [("bundled", "Bundled (SmolLM2-135M-Instruct, offline)"), ("folder", "A local model folder"),
               ("gguf", "A GGUF file"), ("hub", "A Hugging Face hub id")]
SPIN_LIMIT = 2**31 - 1  # what a QSpinBox holds


def default_qsettings() -> QSettings:
    return QSettings("DocFocus", "DocFocus")


def _field_types() -> dict[str, type]:
    """Option name -> the type of its value (None, the model's default, is free text)."""
    defaults = EngineSettings()
    kinds = {option.name: type(defaults.get(option.path)) for option in OPTIONS}
    return {name: str if kind is type(None) else kind for name, kind in kinds.items()}


def _options() -> list[Option]:
    """The dialog's rows, in the engine's order."""
    return list(OPTIONS)


def load_engine_settings(store: QSettings) -> EngineSettings:
    """The saved engine settings; a value that is missing, unreadable or out of its limits keeps its default."""
    types = _field_types()
    model = str(store.value("engine/model", "") or "")
    settings = EngineSettings(model=model if model and model != "bundled" else None)
    for option in _options():
        raw = store.value(f"engine/{option.name}")
        if raw is None:
            continue
        try:
            kind = types[option.name]
            value = (str(raw).lower() in ("true", "1")) if kind is bool else kind(raw)
            settings = settings.with_value(option.path, value)
        except (TypeError, ValueError, OverflowError, SettingsError):
            continue
    return settings


def save_engine_settings(store: QSettings, settings: EngineSettings) -> None:
    store.setValue("engine/model", settings.model or "")
    for option in _options():
        store.setValue(f"engine/{option.name}", settings.get(option.path))
    store.sync()


NEARLY_FULL = 0.9  # share of the cap from which the window says the stored readings are nearly full


def storage_words(figures: dict | None) -> tuple[str, bool]:
    """("Stored readings: 120 MB of 4.0 GB.", nearly full?) from the engine's storage figures."""
    if not figures:
        return "", False
    used, cap = figures["used_bytes"], figures["cap_bytes"]
    nearly_full = cap > 0 and used >= NEARLY_FULL * cap
    words = f"Stored readings: {_size(used)} of {_size(cap)}."
    return (f"Stored readings are nearly full: {_size(used)} of {_size(cap)}." if nearly_full else words), nearly_full


def _size(count: int) -> str:
    return f"{count / 2**30:.1f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"


def model_kind(model: str | None) -> str:
    if not model or model == "bundled":
        return "bundled"
    if model.lower().endswith(".gguf"):
        return "gguf"
    return "folder" if Path(model).exists() else "hub"


def option_editor(option: Option, kind: type, value) -> QWidget:
    """A drop-down for an option with choices, a bounded spin box for a number, a check box for a yes/no
    setting, a text box for free text (an OCR language such as "eng+deu")."""
    choices = option.choice_list()
    if kind is bool and not choices:
        editor = QCheckBox()
        editor.setChecked(bool(value))
    elif kind is str and not choices:
        editor = QLineEdit(str(value or ""))
    elif choices:
        editor = QComboBox()
        for index, choice in enumerate(choices):
            editor.addItem(choice.label, choice.value)
            editor.setItemData(index, choice.help or choice.label, Qt.ItemDataRole.ToolTipRole)
        editor.setCurrentIndex(max(0, editor.findData(value)))
    else:
        low = -SPIN_LIMIT if option.low is None else option.low / option.scale
        high = SPIN_LIMIT if option.high is None else option.high / option.scale
        if kind is int and option.scale == 1:
            editor = QSpinBox(minimum=int(max(low, -SPIN_LIMIT)), maximum=int(min(high, SPIN_LIMIT)))
        else:
            editor = QDoubleSpinBox(decimals=3 if option.scale == 1 else 1, minimum=low, maximum=high)
            editor.setSingleStep(0.01 if high <= 1 else 1.0)
        editor.setValue(value / option.scale)
        editor.setSuffix(option.unit)
    editor.setToolTip(option.help)
    editor.setObjectName(option.name)
    return editor


def editor_value(option: Option, kind: type, editor: QWidget):
    if isinstance(editor, QComboBox):
        return editor.currentData()
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, QLineEdit):
        return editor.text().strip()
    value = editor.value() * option.scale
    return int(round(value)) if kind is int else float(value)


class SettingsDialog(QDialog):
    """The model, then every engine option; the technical ones under "Advanced", with Clear stored readings.

    ``editors[name]`` is the widget of option ``name``. ``sig_clear_cache()`` asks to delete the stored
    document states (the button shows when ``can_clear_cache``)."""

    sig_clear_cache = Signal()

    def __init__(self, settings: EngineSettings, can_clear_cache: bool = True, parent=None,
                 storage: dict | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("DocFocus settings")
        self._original = settings
        self._types = _field_types()
        self.editors: dict[str, QWidget] = {}
        basic, advanced = QFormLayout(), QFormLayout()
        self._build_model_rows(basic, settings)
        for option in _options():
            editor = option_editor(option, self._types[option.name], settings.get(option.path))
            self.editors[option.name] = editor
            (advanced if option.advanced else basic).addRow(option.label, editor)
        self.clear_cache_button = QPushButton("Delete stored readings")
        self.clear_cache_button.setToolTip("Delete every stored document state (documents are read again)")
        self.clear_cache_button.clicked.connect(self.sig_clear_cache)
        self.clear_cache_button.setVisible(can_clear_cache)
        self.storage_label = QLabel(storage_words(storage)[0] or "Stored readings: not measured yet.")
        advanced.addRow("", self.storage_label)
        advanced.addRow("", self.clear_cache_button)
        self.advanced_toggle = QToolButton(text="Advanced", checkable=True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setAutoRaise(True)
        self.advanced = QGroupBox()
        self.advanced.setLayout(advanced)
        self.advanced.hide()
        self.advanced_toggle.toggled.connect(self._show_advanced)
        note = QLabel("A new model or device takes effect with the next question.")
        secondary_text(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for part in (basic, self.advanced_toggle, self.advanced, note, buttons):
            layout.addLayout(part) if isinstance(part, QFormLayout) else layout.addWidget(part)
        self._kind_changed()

    def _build_model_rows(self, form: QFormLayout, settings: EngineSettings) -> None:
        self.model_kind = QComboBox()
        for key, label in MODEL_KINDS:
            self.model_kind.addItem(label, key)
        self.model_path = QLineEdit(settings.model or "")
        self.model_path.setPlaceholderText("folder, .gguf file or hub id such as HuggingFaceTB/SmolLM2-360M-Instruct")
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.model_path, 1)
        row.addWidget(self.browse)
        holder = QWidget()
        holder.setLayout(row)
        self.model_kind.currentIndexChanged.connect(self._kind_changed)
        self.model_kind.setCurrentIndex([k for k, _ in MODEL_KINDS].index(model_kind(settings.model)))
        form.addRow("Model", self.model_kind)
        form.addRow("", holder)

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.adjustSize()

    def _kind_changed(self, *_) -> None:
        kind = self.model_kind.currentData()
        self.model_path.setEnabled(kind != "bundled")
        self.browse.setEnabled(kind in ("folder", "gguf"))

    def _browse(self) -> None:
        if self.model_kind.currentData() == "folder":
            path = QFileDialog.getExistingDirectory(self, "Model folder")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.model_path.setText(path)

    def result_settings(self) -> EngineSettings:
        """The edited settings (validated by EngineSettings itself)."""
        kind = self.model_kind.currentData()
        model = self.model_path.text().strip() if kind != "bundled" else None
        settings = self._original.changed(model=model or None)
        for option in _options():
            settings = settings.with_value(option.path, editor_value(option, self._types[option.name],
                                                                     self.editors[option.name]))
        return settings
