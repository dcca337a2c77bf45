"""The architecture builder, driven as a user drives it."""


import pytest
from PySide6 import QtCore, QtWidgets

from explorer.core.families.rbm.trainer import RBMConfig
from explorer.core.spec import network as S
from explorer.gui.main_window import MainWindow
from explorer.gui.panels.builder_panel import ArchitectureBuilder, parse_params, parse_shape


@pytest.fixture
def builder(qtbot):
    b = ArchitectureBuilder()
    qtbot.addWidget(b)
    b.resize(1300, 800)
    b.show()
    b.load_preset("lenet5")
    return b


def table_column(b, col):
    return [b.table.item(r, col).text() for r in range(b.table.rowCount())]


def test_lenet_table_shows_inferred_shapes_and_totals(builder):
    shapes = table_column(builder, 3)
    assert shapes[0] == "6x28x28" and shapes[-1] == "10"
    assert "61,706 parameters" in builder.totals.text()
    assert table_column(builder, 5)[:4] == ["5 / 1", "5 / 1", "6 / 2", "14 / 2"] or \
        [r for r in table_column(builder, 5) if r][:4] == ["5 / 1", "5 / 1", "6 / 2", "14 / 2"]
    assert builder.diagram.n_boxes == len(builder.spec.layers) + 1
    assert builder.train_btn.isEnabled()


def test_add_edit_undo_remove(qtbot, builder):
    n = builder.table.rowCount()
    builder.palette.setCurrentRow([builder.palette.item(i).text() for i in range(builder.palette.count())]
                                  .index("Dropout"))
    qtbot.mouseClick(builder.add_btn, QtCore.Qt.MouseButton.LeftButton)
    assert builder.table.rowCount() == n + 1
    assert builder.table.item(n, 1).text() == "Dropout"
    # edit a parameter inline, in the table: conv1 gets a kernel too big for its input -> marked invalid
    item = builder.table.item(0, 2)
    item.setText("out_channels=6, kernel_size=40, stride=1, padding=0")
    assert "Conv2d #1" in builder.table.item(0, 7).text() and "kernel 40" in builder.table.item(0, 7).text()
    assert not builder.train_btn.isEnabled()
    # undo the edit, then undo the add
    qtbot.mouseClick(builder.undo_btn, QtCore.Qt.MouseButton.LeftButton)
    assert builder.table.item(0, 7).text() == "ok" and builder.train_btn.isEnabled()
    qtbot.mouseClick(builder.undo_btn, QtCore.Qt.MouseButton.LeftButton)
    assert builder.table.rowCount() == n
    qtbot.mouseClick(builder.redo_btn, QtCore.Qt.MouseButton.LeftButton)
    assert builder.table.rowCount() == n + 1
    # remove the selected (last) layer
    builder.select_row(n)
    qtbot.mouseClick(builder.remove_btn, QtCore.Qt.MouseButton.LeftButton)
    assert builder.table.rowCount() == n


def test_insert_and_reorder(qtbot, builder):
    builder.select_row(1)
    builder.palette.setCurrentRow([builder.palette.item(i).text() for i in range(builder.palette.count())]
                                  .index("LocalContrastNorm"))
    qtbot.mouseClick(builder.insert_btn, QtCore.Qt.MouseButton.LeftButton)
    assert builder.table.item(1, 1).text() == "LocalContrastNorm"
    builder.select_row(1)
    qtbot.mouseClick(builder.down_btn, QtCore.Qt.MouseButton.LeftButton)
    assert builder.table.item(2, 1).text() == "LocalContrastNorm"
    assert builder.table.item(1, 1).text() != "LocalContrastNorm"


def test_bad_inline_text_gives_a_message_and_changes_nothing(builder):
    before = S.spec_to_dict(builder.spec)
    builder.table.item(0, 2).setText("kernel_size=five")
    assert "kernel_size" in builder.message.text()
    assert S.spec_to_dict(builder.spec) == before


def test_input_shape_edit_updates_shapes(qtbot, builder):
    builder.input_edit.setText("1x32x32")
    builder.input_edit.editingFinished.emit()
    assert builder.table.item(0, 3).text() == "6x32x32"
    builder.input_edit.setText("abc")
    builder.input_edit.editingFinished.emit()
    assert "whole numbers" in builder.message.text()


def test_skip_connections_are_drawn(builder):
    builder.load_preset("unet-small")
    assert builder.info.valid, builder.info.first_error
    assert builder.diagram.n_arcs == len(builder.info.connections) >= 2


def test_save_open_and_invalid_file_keeps_network(tmp_path, builder):
    path = tmp_path / "net.json"
    assert builder.save_file(path)
    builder.load_preset("rnn")
    assert builder.open_file(path)
    assert builder.spec.name == S.load_preset("lenet5").name
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    before = S.spec_to_dict(builder.spec)
    assert not builder.open_file(bad)
    assert "bad.json" in builder.message.text()
    assert S.spec_to_dict(builder.spec) == before


def test_export_writes_torch_source(tmp_path, builder):
    out = tmp_path / "lenet.py"
    assert builder.export_file(out)
    text = out.read_text()
    assert "class Network" in text and "import torch" in text


def test_parameter_arithmetic_matches_the_lecture(builder):
    a = builder.arithmetic
    a.image.setValue(200)
    a.hidden.setValue(25000)
    a.kernel.setValue(10)
    text = a.result.text()
    assert "1,000,000,000" in text and "2,500,000" in text


def test_parsers():
    assert parse_shape("1x28x28") == (1, 28, 28) and parse_shape("784") == (784,)
    assert parse_shape("1, 28, 28") == (1, 28, 28) and parse_shape(" 3 × 32 × 32 ") == (3, 32, 32)
    for missing in ("x28x28", "1x28x", "1xx28"):  # one size deleted: refused, not read as another shape
        with pytest.raises(ValueError, match="a size is missing"):
            parse_shape(missing)
    with pytest.raises(ValueError):
        parse_shape("0x3")
    assert parse_params("out_channels=6, kernel_size=5", "Conv2d") == {"out_channels": 6, "kernel_size": 5}
    with pytest.raises(ValueError, match="no parameter"):
        parse_params("colour=3", "Conv2d")


def test_train_from_builder_starts_an_rbm(qtbot, tmp_path, monkeypatch):
    settings = QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(RBMConfig(dataset="bars", bars_size=6, hidden=16, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    try:
        bw = win.show_builder()
        b = bw.builder
        b.load_preset("rbm-digits")
        qtbot.mouseClick(b.train_btn, QtCore.Qt.MouseButton.LeftButton)
        hidden = b.spec.layers[0].params["hidden"]
        assert win.session.trainer.rbm.n_hidden == hidden
        assert win.session.trainer.dataset.name == "digits"
        # a family that cannot be built from a spec says so and keeps the current session (the CNN can: take
        # its spec converter away in the registry)
        import dataclasses

        from explorer.core.families.registry import FAMILIES
        monkeypatch.setitem(FAMILIES, "cnn", dataclasses.replace(FAMILIES["cnn"], config_from_spec=None))
        old = win.session
        b.load_preset("lenet5")
        qtbot.mouseClick(b.train_btn, QtCore.Qt.MouseButton.LeftButton)
        assert win.session is old
        assert "not part of this version" in b.message.text()
        bw.close()
    finally:
        win.close()


def test_block_diagram_wraps_into_rows_that_can_be_read(qtbot, builder):
    """LeNet-5's 14 boxes in one row were drawn at half size with 4-point labels, and still scrolled:
    they wrap into rows now, like a line of text, at the size that is largest in the view."""
    d = builder.diagram
    qtbot.waitUntil(lambda: d.viewport().width() > 300, timeout=2000)
    assert d.n_boxes == 14 and d.per_row < d.n_boxes
    scale = d.transform().m11()
    assert scale >= 0.7
    # the whole network is in sight: no scrolling
    shown = d.mapToScene(d.viewport().rect()).boundingRect()
    assert shown.contains(d.scene().itemsBoundingRect().adjusted(1, 1, -1, -1))
    # every box's label fits inside it, the longest layer names too
    for preset, n in (("lenet5", 14), ("alexnet-small", 25)):
        builder.load_preset(preset)
        boxes = [i for i in d.scene().items() if isinstance(i, QtWidgets.QGraphicsRectItem)]
        texts = [i for i in d.scene().items() if isinstance(i, QtWidgets.QGraphicsTextItem)]
        assert len(boxes) == n and len(texts) == 2 * n
        for t in texts:
            r = t.sceneBoundingRect()
            assert any(b.sceneBoundingRect().adjusted(-1, -1, 1, 1).contains(r) for b in boxes), t.toPlainText()
    builder.load_preset("unet-small")  # the skips across rows are drawn too
    assert d.n_arcs == len(builder.info.connections) >= 2


def test_a_short_network_stays_in_one_row(qtbot):
    b = ArchitectureBuilder()
    qtbot.addWidget(b)
    b.resize(1300, 800)
    b.show()
    b.set_spec(S.NetworkSpec("mlp", (64,), [S.LayerSpec("Linear", {"out_features": 10}), S.LayerSpec("Softmax")]))
    qtbot.waitUntil(lambda: b.diagram.n_boxes == 3, timeout=2000)
    assert b.diagram.per_row == 3


def test_a_network_its_family_cannot_train_is_not_called_valid(qtbot, builder):
    """LeNet-5 with its family set to "rbm" fits together layer by layer, and the builder called it "valid" and
    offered Train, which then refused it: the line says what the family needs and Train waits until it is met."""
    builder.family_combo.setCurrentText("rbm")  # as a user picks it in the Family box
    assert builder.spec.family == "rbm"
    text = builder.totals.text()
    assert "valid" not in text.replace("invalid", "")
    assert "the rbm panel cannot train it" in text and "single RBM layer" in text
    assert not builder.train_btn.isEnabled() and "single RBM layer" in builder.train_btn.toolTip()
    assert builder.export_btn.isEnabled()  # a network whose shapes fit: its PyTorch module can be written
    qtbot.mouseClick(builder.undo_btn, QtCore.Qt.MouseButton.LeftButton)
    assert builder.spec.family == "cnn" and builder.totals.text().endswith("· valid")
    assert builder.train_btn.isEnabled()


def test_a_long_fault_stays_inside_a_laptop_screen(qtbot):
    """On a 1366x768 screen the builder's window is 1350 px wide; a shape error's line ("invalid: Linear #7: needs a
    vector input (F,) but gets 16x5x5; add a Flatten first") was one line as wide as itself: the builder grew wider
    than its window, the end of the fault and the selected layer's form were cut off by the window's edge."""
    b = ArchitectureBuilder()
    qtbot.addWidget(b)
    b.resize(1350, 700)
    b.show()
    qtbot.waitExposed(b)
    b.load_preset("lenet5")
    b.remove_layer([layer.type for layer in b.spec.layers].index("Flatten"))
    assert "add a Flatten first" in b.totals.text()
    qtbot.wait(50)  # (laid out again)
    assert b.minimumSizeHint().width() <= 1350
    form = b.form_box.mapTo(b, b.form_box.rect().topRight())
    assert form.x() < b.width(), "the selected layer's form is beyond the window's edge"
    totals = b.totals.mapTo(b, b.totals.rect().topRight())
    assert totals.x() < b.width()


def test_an_unsaved_network_comes_back_when_the_builder_opens_again(qtbot, tmp_path):
    """The builder's network, edited and not saved, was lost when the app closed. It is kept on disk as it
    changes, brought back when the builder opens next, and let go once a network is saved (not when another
    is loaded over it)."""
    from explorer.gui.panels.builder_panel import BuilderWindow

    first = BuilderWindow()
    qtbot.addWidget(first)
    kept = first.builder.unsaved_path()
    assert not kept.exists()  # a preset as it is: nothing to keep
    first.builder.load_preset("lenet5")
    first.builder.remove_layer(0)
    first.builder.add_layer("Linear")
    assert kept.is_file()
    edited = S.spec_to_dict(first.builder.spec)
    first.close()

    again = BuilderWindow()  # the app started again
    qtbot.addWidget(again)
    assert S.spec_to_dict(again.builder.spec) == edited
    assert "Restored the network you had not saved" in again.builder.message.text()
    again.builder.undo_stack.undo()  # (the restore is an edit like any other: undone, the preset it replaced)
    assert S.spec_to_dict(again.builder.spec) != edited
    assert S.spec_to_dict(S.load_spec(kept)) == edited  # (let go only when a network is saved)
    again.builder.undo_stack.redo()
    assert kept.is_file()
    assert again.builder.save_file(tmp_path / "mine.json")
    assert not kept.exists()  # saved: the file is the user's now

    third = BuilderWindow()
    qtbot.addWidget(third)
    assert S.spec_to_dict(third.builder.spec) != edited  # nothing unsaved to bring back

    # a preset loaded over an unsaved network (by the user, or a lecture's step): it stays kept, the message
    # says so, and it comes back next time (it was deleted, and closing the app then lost it)
    third.builder.add_layer("ReLU")
    mine = S.spec_to_dict(third.builder.spec)
    third.builder.load_preset("unet-small")
    assert third.builder.spec.name == "unet-small" and S.spec_to_dict(S.load_spec(kept)) == mine
    assert "The network you had not saved is kept" in third.builder.message.text()
    third.builder.load_preset("lenet5")  # (nothing edited since: nothing more to say, the same one kept)
    assert "had not saved" not in third.builder.message.text() and S.spec_to_dict(S.load_spec(kept)) == mine
    third.close()
    fourth = BuilderWindow()
    qtbot.addWidget(fourth)
    assert S.spec_to_dict(fourth.builder.spec) == mine

    # a file opened over it: the same
    fourth.builder.add_layer("Tanh")
    mine = S.spec_to_dict(fourth.builder.spec)
    assert fourth.builder.open_file(tmp_path / "mine.json")
    assert S.spec_to_dict(S.load_spec(kept)) == mine and "is kept" in fourth.builder.message.text()
    fourth.builder.undo_stack.undo()  # (and Undo brings it back on screen)
    assert S.spec_to_dict(fourth.builder.spec) == mine
    fourth.builder.undo_stack.redo()  # back to the file: still kept (a Redo to the loaded network deleted it)
    assert S.spec_to_dict(S.load_spec(kept)) == mine
    fourth.close()
    fifth = BuilderWindow()
    qtbot.addWidget(fifth)
    assert S.spec_to_dict(fifth.builder.spec) == mine
    # saved right after a preset is loaded over it (the stack already clean): let go all the same
    fifth.builder.load_preset("lenet5")
    assert kept.is_file()
    assert fifth.builder.save_file(tmp_path / "mine2.json")
    assert not kept.exists() and fifth.builder.message.text() == f"Saved {tmp_path / 'mine2.json'}."


def test_a_preset_edited_in_the_builder_trains_under_a_name_that_says_so(qtbot, settings):
    """LeNet-5 with its first convolution at 8 channels trained as "CNN lenet5 (..., 62,558 parameters)" and the
    CNN settings' Preset box said lenet5, though it was no longer that network."""
    from explorer.core.families.cnn.trainer import CNNConfig

    win = MainWindow(RBMConfig(dataset="bars", bars_size=6, hidden=16, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    try:
        b = win.show_builder().builder
        b.load_preset("lenet5")
        assert b.trained_spec().name == "lenet5"  # as it is: its own name
        b.set_layer_params(0, {**b.spec.layers[0].params, "out_channels": 8})
        qtbot.mouseClick(b.train_btn, QtCore.Qt.MouseButton.LeftButton)
        config = win.session.trainer.config
        assert isinstance(config, CNNConfig) and config.network_name() == "lenet5, edited"
        assert win.session.trainer.describe().startswith("CNN lenet5, edited (")
        settings_form = win.panel.settings
        assert settings_form.preset.currentIndex() == -1 and settings_form.preset.currentText() == ""
        assert settings_form.network.text() == "lenet5, edited (from the builder)"
        win.show_builder().close()
    finally:
        win.close()
