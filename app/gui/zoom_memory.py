"""Each document's zoom (fit width, fit page or a fixed zoom), remembered by its SHA-256 in QSettings."""
from __future__ import annotations


class ZoomMemory:
    """``restore(sha256)`` once the document is shown and known; ``changed(...)`` on every zoom change after that
    (the first fit of a newly opened document must not overwrite what it had last time)."""

    def __init__(self, store, view) -> None:
        self.store, self.view = store, view
        self.restored = False

    def new_document(self) -> None:
        self.restored = False

    def changed(self, sha256: str | None, zoom: float, fit_mode: str) -> None:
        if self.restored and sha256:
            self.store.setValue(f"zoom/{sha256}", fit_mode or repr(zoom))

    def restore(self, sha256: str | None) -> None:
        if self.restored or not sha256 or not self.view.pages:
            return
        self.restored = True
        saved = str(self.store.value(f"zoom/{sha256}", "") or "")
        if saved in ("width", "page"):
            self.view.fit_width() if saved == "width" else self.view.fit_page()
        elif saved:
            try:
                self.view.set_zoom(float(saved))
            except ValueError:
                pass  # an unreadable value: keep the default fit
