"""Parts of the main window that need no document logic: the reader helpers, the status bar labels, settings.

``WindowParts`` is a mixin of ``MainWindow`` (app/gui/main_window.py); it uses the window's attributes
(``view``, ``find_bar``, ``page_box``, ``theme_actions``, ``store``, ``engine_settings``, ``worker``, ...).
"""
from __future__ import annotations

from PySide6.QtWidgets import QApplication

from .settings import SettingsDialog, save_engine_settings, storage_words
from .theme import apply_theme
from .wording import answer_method


class WindowParts:
    # --- reader helpers -----------------------------------------------------------------------------
    def show_find(self) -> None:
        self.find_bar.show()
        self.find_bar.edit.setFocus()
        self.find_bar.edit.selectAll()

    def find_next(self, step: int) -> None:
        self.view.find_next(step)
        self.find_bar.set_count(len(self.view.find_hits), self.view.find_index)

    def focus_page_box(self) -> None:
        self.page_box.setFocus()
        self.page_box.selectAll()

    def set_theme(self, theme: str) -> None:
        """View > Theme: "system", "light" or "dark", remembered."""
        theme = theme if theme in self.theme_actions else "system"
        self.theme_actions[theme].setChecked(True)
        self.store.setValue("view/theme", theme)
        app = QApplication.instance()
        if app is not None:
            apply_theme(app, theme)

    # --- status bar -----------------------------------------------------------------------------------
    def _on_cache_cleared(self) -> None:
        self.banners.show_banner("cache", "info", "Stored readings were deleted: each document is read again "
                                                  "(and stored again) at its next question.")

    def _on_model(self, info: dict) -> None:
        self.model_info = info
        self._update_status_labels()

    def _update_status_labels(self) -> None:
        info = self.model_info or {}
        model = info.get("id") or (self.engine_settings.model or "bundled model")
        self.model_label.setText(f"Model: {model}" + ("" if info else " (not loaded)"))
        device = info.get("device_name") or info.get("device") or self.engine_settings.device
        self.device_label.setText(f"Device: {device}")
        text, detail = answer_method(self.engine_settings)
        self.attention_label.setText(text)
        self.attention_label.setToolTip(detail)

    def _on_storage(self, figures: dict) -> None:
        """The space stored readings take: in the library panel, in Settings, and said when nearly full."""
        self.storage = figures
        self.library.panel.show_storage(figures)
        words, nearly_full = storage_words(figures)
        if nearly_full:
            self.banners.show_banner("storage", "info", f"{words} The least recently used readings are dropped to "
                                                        "make room (Settings > Advanced sets the space).")

    # --- settings -------------------------------------------------------------------------------------
    def show_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.engine_settings, self.engine_settings.store.use_cache, self,
                                getattr(self, "storage", None))
        dialog.sig_clear_cache.connect(self.worker.req_clear_cache)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.result_settings()))
        dialog.open()
        return dialog

    def apply_settings(self, settings) -> None:
        changed = settings != self.engine_settings
        self.engine_settings = settings
        save_engine_settings(self.store, settings)
        if changed:
            self.worker.req_configure.emit(settings)
            self.model_info = None
            self.handle = None  # the next question reopens the document with the new engine
            self._open_job = None
        self._update_status_labels()
