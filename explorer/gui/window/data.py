"""Where the window's session gets its data: a folder of files, or a download into the user cache."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from PySide6 import QtWidgets

from explorer.core.data.datasets import DataError, default_cache_dir, download_dataset

if TYPE_CHECKING:
    from explorer.core.engine.protocol import Session
    from explorer.gui.window.notice import NoticeBar


class DataMixin:
    """Data folders and downloads of :class:`~explorer.gui.main_window.MainWindow` (a part of it: see that
    class for why the parts are mixins).

    Keeps ``_download`` (the download under way, polled by the redraw timer). Uses ``session``, ``panel``,
    ``notice`` and the status bar's ``progress``.
    """

    session: Session | None
    notice: NoticeBar
    progress: QtWidgets.QProgressBar
    _download: dict[str, Any] | None

    def choose_data_folder(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Folder with MNIST or Fashion-MNIST IDX files")
        if path:
            self.use_data_folder(path)

    def use_data_folder(self, path: str) -> None:
        """Train on the IDX files in ``path`` (MNIST unless Fashion-MNIST is already chosen)."""
        if self.session is None:
            return
        if hasattr(self.panel, "use_data_folder"):  # a family with its own kind of data folder
            self.panel.use_data_folder(path)
            return
        dataset = self.session.trainer.config.dataset
        if dataset not in ("mnist", "fashion-mnist"):
            dataset = "mnist"
        self.panel.settings.set_data_dir(path)
        self.session.set_hparams(dataset=dataset, data_dir=path)
        self.session.reset()
        self.notice.show_message(f"Loading {dataset} from {path}…")

    def download(self, name: str) -> None:
        """Download a data set into the user cache on a plain thread; progress shows in the status bar."""
        if self._download is not None:
            return
        state: dict[str, Any] = {"name": name, "done": 0, "total": 0, "result": None, "error": None}

        def work() -> None:
            try:
                state["result"] = str(download_dataset(
                    name, default_cache_dir() / name,
                    progress=lambda d, t: state.update(done=d, total=t)))
            except (DataError, OSError) as exc:
                state["error"] = str(exc)

        self._download = state
        self.progress.setRange(0, 0)
        self.progress.show()
        threading.Thread(target=work, name="download", daemon=True).start()

    def _poll_download(self) -> None:
        st = self._download
        if st is None:
            return
        if st["total"]:
            self.progress.setRange(0, int(st["total"]))
            self.progress.setValue(int(st["done"]))
        if st["result"] or st["error"]:
            self.progress.hide()
            self._download = None
            if st["error"]:
                self.notice.show_message(st["error"], error=True)
            else:
                self.notice.show_message(f"{st['name']} is in {st['result']}.")
                self.panel.settings.dataset.setCurrentText(st["name"])
                self.use_data_folder(st["result"])
