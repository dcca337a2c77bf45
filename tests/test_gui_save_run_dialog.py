"""File > Save run…: the folder dialog, driven as a user drives it (offscreen Qt)."""

from PySide6 import QtCore, QtWidgets

from explorer.core.persist.runfolder import load_run
from tests.helpers import open_window, tiny_rbm_config


def save_through_the_dialog(qtbot, win, start, name):
    """Ctrl+S: in the dialog the user goes to ``start``, types ``name`` and presses Enter; returns once the
    run is saved."""
    seen, refused = [], []

    def close_a_refusal():
        box = QtWidgets.QApplication.activeModalWidget()
        if isinstance(box, QtWidgets.QMessageBox):  # ("Directory not found")
            refused.append(box.text())
            box.close()

    def type_the_name():
        dialog = QtWidgets.QApplication.activeModalWidget()
        seen.append(dialog)
        dialog.setDirectory(str(start))
        edit = dialog.findChild(QtWidgets.QLineEdit, "fileNameEdit")
        qtbot.keyClicks(edit, name)
        QtCore.QTimer.singleShot(0, close_a_refusal)
        qtbot.keyClick(edit, QtCore.Qt.Key.Key_Return)
        if dialog.isVisible():  # the name was refused: close it, or the test would wait on it for ever
            refused.append("the dialog stayed open")
            dialog.reject()

    QtCore.QTimer.singleShot(0, type_the_name)
    win.act_save_run.trigger()
    assert seen, "the dialog did not open"
    assert isinstance(seen[0], QtWidgets.QFileDialog)
    assert not refused, f"the dialog did not take the name {name!r}: {refused}"
    assert win._saves, "nothing was saved"
    qtbot.waitUntil(lambda: all(done.is_set() for done in win._saves), timeout=10000)  # the save, over


def test_save_run_takes_the_typed_name_of_a_new_folder(qtbot, settings, tmp_path):
    win = open_window(qtbot, settings, tiny_rbm_config())
    try:
        run = tmp_path / "runs" / "my-first-rbm"  # neither folder exists yet
        save_through_the_dialog(qtbot, win, tmp_path, "runs/my-first-rbm")
        qtbot.waitUntil(lambda: "saved run to" in win.notice.label.text(), timeout=5000)
        assert {"run.json", "weights.safetensors"} <= {p.name for p in run.iterdir()}
        assert load_run(run).step == 0  # the whole run, readable
        assert [p.name for p in (tmp_path / "runs").iterdir()] == ["my-first-rbm"]  # nothing left beside it

        # the folder, now a run's, is chosen again by its name: the new save replaces the old one whole
        win.step_once()
        qtbot.waitUntil(lambda: win.session.trainer.step == 1, timeout=5000)
        save_through_the_dialog(qtbot, win, tmp_path / "runs", "my-first-rbm")
        assert load_run(run).step == 1
        assert [p.name for p in (tmp_path / "runs").iterdir()] == ["my-first-rbm"]
    finally:
        win.close()


def test_the_dialog_takes_no_new_folder_under_a_file_and_one_name_only(qtbot, tmp_path):
    """"notes.txt/run" (a folder under a file) and two quoted names were taken as new folders: the save failed
    later with its own message."""
    from explorer.gui.window.sessions import SaveFolderDialog

    (tmp_path / "notes.txt").write_text("mine")
    dialog = SaveFolderDialog(None, "Save the run")
    qtbot.addWidget(dialog)
    dialog.setDirectory(str(tmp_path))
    for name, taken in (("runs/new", True), ("notes.txt/run", False), ('"a" "b"', False), ("fresh", True)):
        dialog.name_edit.setText(name)
        assert (dialog.new_folder() is not None) is taken, name
        if taken:
            assert dialog.save_button.isEnabled(), name
