"""The "Your model" panel and attaching the window to a watched run: over a source of frames in this process
(tests/watch_fakes.py), as a connection or a watch folder brings them; and the command line's bad input."""

import math

import numpy as np
import pytest
import pytestqt.exceptions
from PySide6 import QtCore, QtWidgets

from explorer.cli import main
from explorer.core.engine.session import FINISHED, RUNNING
from explorer.core.watch.attach import Opened
from explorer.core.watch.session import READ_ONLY
from explorer.gui.main_window import MainWindow
from explorer.gui.panels import EXTERNAL_PANELS, PANELS
from explorer.gui.panels.base import PRESENTATION_MIN_VIEW_PX
from explorer.gui.panels.watch_panel import PAGE_GATES, PAGE_HIST, PAGE_LINEAR, PAGE_MAPS, mosaic_columns
from tests.watch_fakes import FakeSource, feed_run, metric_rows, snapshot_arrays, snapshot_fields, welcome


def attached(qtbot, settings, size=(1600, 1000), **kw):
    """A window attached to a fake connection, a run of 20 steps fed and drawn."""
    settings.setValue("training/process", False)
    source = FakeSource()
    win = MainWindow(settings=settings, attach=Opened(source, welcome(**kw), "127.0.0.1:5000", True))
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    feed_run(source, steps=20, segmentation=kw.get("segmentation", False))
    qtbot.waitUntil(lambda: win.panel._shown is not None and win.session.state == RUNNING, timeout=5000)
    return win, source


@pytest.fixture
def run(qtbot, settings):
    win, source = attached(qtbot, settings)
    yield win, source
    win.close()


def tree_rows(tree):
    out = []

    def walk(item, depth):
        out.append((depth, *(item.text(c) for c in range(4))))
        for i in range(item.childCount()):
            walk(item.child(i), depth + 1)

    for i in range(tree.topLevelItemCount()):
        walk(tree.topLevelItem(i), 0)
    return out


def test_an_attached_run_shows_in_its_own_panel(run):
    win, _source = run
    assert win.family == "watch" and isinstance(win.panel, EXTERNAL_PANELS["watch"])
    assert win.family_combo.currentText() == "Your model" and win.family_combo.count() == len(PANELS) + 1
    assert not win.act_reset.isEnabled() and not win.device_combo.isEnabled() and not win.act_save_run.isEnabled()
    assert win.act_play.isEnabled() and win.act_step.isEnabled()  # the script gave control
    assert win.notice.label.text() == ("Watching MyCNN at 127.0.0.1:5000 (Space pauses and plays it, "
                                       "S steps it).")
    assert win.status_device.text() == "device: cuda:0 · in your script"
    assert win.panel.description.text().startswith("MyCNN at 127.0.0.1:5000 · 10 layers")


def test_the_tree_lists_the_layers_with_type_shape_and_parameters(run):
    win, _source = run
    rows = tree_rows(win.panel.tree)
    assert rows == [
        (0, "features", "", "", "2,572"),
        (1, "0", "Conv2d", "6×28×28", "156"), (1, "1", "ReLU", "6×28×28", ""),
        (1, "2", "MaxPool2d", "6×14×14", ""), (1, "3", "Conv2d", "16×10×10", "2,416"),
        (1, "4", "Sigmoid", "16×10×10", ""), (1, "5", "MaxPool2d", "16×5×5", ""),
        (0, "rnn", "LSTM", "5×24", "18,048"),
        (0, "classifier", "", "", "1,130"),
        (1, "0", "Linear", "32", "800"), (1, "1", "Tanh", "32", ""), (1, "2", "Linear", "10", "330"),
    ]
    assert win.panel.selected == "features.0"  # the first layer worth seeing


def test_selecting_a_conv_layer_shows_its_maps_and_a_unit_its_receptive_field(run, qtbot):
    win, source = run
    panel = win.panel
    item = panel._items["features.3"]
    panel.tree.setCurrentItem(item)  # as a click in the tree does
    assert panel.selected == "features.3" and panel.pages.currentIndex() == PAGE_MAPS
    assert [r["shape"] for r in panel.maps.rows] == [(16, 10, 10)]
    np.testing.assert_array_equal(panel.maps._maps[0], snapshot_arrays(20)["act/features.3"])
    assert panel.layer_title.text() == "features.3 · Conv2d · output 16×10×10 · 2,416 parameters"
    panel.maps.click_unit(0, 2, 4, 3)
    assert source.commands()[-1] == {"cmd": "erf", "layer": "features.3", "channel": 2, "y": 4, "x": 3}
    # the theoretical field: 14x14, jump 2, offset -2: rows 6..19, columns 4..17 (none in the padding)
    box = panel.input_view.box
    assert box.isVisible() and box.rect() == QtCore.QRectF(4, 6, 14, 14)
    assert "Receptive field 14×14 pixels (jump 2)" in panel.unit_label.text()
    assert "comes with the next snapshot" in panel.unit_label.text() and not panel.input_view.heat.isVisible()
    source.push("snapshot", snapshot_fields(21), snapshot_arrays(21, erf=("features.3", 2, 4, 3)))
    qtbot.waitUntil(lambda: panel.input_view.heat.isVisible(), timeout=5000)
    assert "Effective field: 100% of |∂unit/∂input| inside the box." in panel.unit_label.text()
    source.push("snapshot", snapshot_fields(22), snapshot_arrays(22))  # the next one has no erf: it stays
    qtbot.waitUntil(lambda: panel._shown.step == 22, timeout=5000)
    assert panel.input_view.heat.isVisible() and panel.input_view.box.isVisible()


def test_a_unit_near_the_edge_shows_where_its_field_reaches_into_the_padding(run):
    win, _source = run
    panel = win.panel
    panel.select_layer("features.0")
    panel.maps.click_unit(0, 0, 0, 0)  # 5x5 with padding 2: rows and columns -2..2, on the image 0..2
    assert panel.input_view.box.rect() == QtCore.QRectF(0, 0, 3, 3)
    assert panel.input_view.outer.isVisible() and panel.input_view.outer.rect() == QtCore.QRectF(-2, -2, 5, 5)


def test_the_kernels_tab_shows_the_layers_kernels(run, qtbot):
    win, _source = run
    panel = win.panel
    panel.select_layer("features.3")
    panel.maps_tabs.setCurrentWidget(panel.kernels)
    qtbot.waitUntil(lambda: panel.kernels.image.image is not None, timeout=3000)
    assert panel.kernels.title.text() == "Kernels of features.3: 16 × 6 of 5×5"
    assert panel.kernels.image.image.shape == (6 * 6 - 1, 16 * 6 - 1)  # rows: input channels, columns: outputs
    panel.select_layer("features.2")  # a pooling: maps, no kernels
    assert panel.pages.currentIndex() == PAGE_MAPS and panel.kernels.showing_placeholder
    assert [r["shape"] for r in panel.maps.rows] == [(6, 14, 14)]
    panel.select_layer("features.0")  # one input channel: its 6 kernels in reading order, as large as fits
    qtbot.waitUntil(lambda: panel.kernels.title.text().startswith("Kernels of features.0"), timeout=3000)
    assert panel.kernels.title.text() == "Kernels of features.0: 6 of 5×5 (one input channel)"
    vb = panel.kernels.viewbox
    cols = mosaic_columns((6, 5, 5), vb.width(), vb.height())
    assert panel.kernels.image.image.shape == (math.ceil(6 / cols) * 6 - 1, cols * 6 - 1)


def test_a_linear_layer_shows_activations_and_weights(run):
    win, _source = run
    panel = win.panel
    panel.select_layer("classifier.0")
    assert panel.pages.currentIndex() == PAGE_LINEAR
    a = snapshot_arrays(20)
    np.testing.assert_array_equal(panel.activations._matrix, a["act/classifier.0"])
    np.testing.assert_array_equal(panel.weights._matrix, a["weight/classifier.0"])
    top = float(np.abs(a["weight/classifier.0"]).max())
    assert panel.weights.levels == pytest.approx((-top, top))
    assert panel.activations.title.text() == "Activations of classifier.0: 8 probe samples × 32 units"
    assert panel.weights.title.text() == "Weights W of classifier.0: 32 × 24"


def test_an_lstm_layer_shows_its_gates_in_every_layer_and_direction(run, qtbot):
    win, _source = run
    panel = win.panel
    panel.select_layer("rnn")
    assert panel.pages.currentIndex() == PAGE_GATES
    assert [panel.direction.itemText(i) for i in range(panel.direction.count())] == [
        "layer 1", "layer 1, reverse", "layer 2", "layer 2, reverse"]
    assert [panel.gate.itemData(i) for i in range(panel.gate.count())] == list("ifgoch")
    a = snapshot_arrays(20)
    np.testing.assert_array_equal(panel.gate_map._matrix, a["gates/rnn/l0/i"].T)  # rows: units
    panel.direction.setCurrentIndex(3)
    panel.gate.setCurrentIndex(1)
    np.testing.assert_array_equal(panel.gate_map._matrix, a["gates/rnn/l1r/f"].T)
    assert panel.gate_map.levels == (0.0, 1.0)
    panel.gate.setCurrentIndex(4)  # the cell state: a scale of its own, symmetric
    top = float(np.abs(a["gates/rnn/l1r/c"]).max())
    assert panel.gate_map.levels == pytest.approx((-top, top))
    qtbot.mouseClick(panel.gate_map.plot.viewport(), QtCore.Qt.MouseButton.LeftButton,
                     pos=panel.gate_map.plot.mapFromScene(panel.gate_map.row_scene_pos(7)))
    assert panel.gate_unit == 7
    xs, ys = panel.gate_trace.series("f")
    np.testing.assert_allclose(ys, a["gates/rnn/l1r/f"][:, 7])


def test_an_activation_layer_shows_its_distribution_and_the_saturation_by_layer(run, qtbot):
    win, _source = run
    panel = win.panel
    panel.select_layer("features.4")
    assert panel.pages.currentIndex() == PAGE_HIST
    assert panel.hist.title.text() == "Activations of features.4 (Sigmoid) on the probe batch: 60% saturated"
    panel.select_layer("features.1")
    assert panel.hist.title.text() == "Activations of features.1 (ReLU) on the probe batch: 25% dead (exactly 0)"
    qtbot.waitUntil(lambda: panel.saturation.updates > 0, timeout=3000)
    assert list(panel.saturation.bars.opts["height"]) == pytest.approx([0.25, 0.6, 0.1])


def test_the_gradient_norms_fill_the_curves_and_the_layers_by_time_heatmap(run, qtbot):
    win, source = run
    panel = win.panel
    qtbot.waitUntil(lambda: panel.grad_heat._matrix is not None, timeout=5000)
    names = ["features.0", "features.3", "rnn", "classifier.0", "classifier.2"]
    xs, ys = panel.grad_curve.series("g0")
    assert list(xs) == [5, 10, 15, 20]
    rows = [r for r in metric_rows(1, 20) if "grad/rnn" in r]
    np.testing.assert_allclose(ys, [r["grad/features.0"] for r in rows])
    expected = np.log10([[r[f"grad/{n}"] for n in names] for r in rows]).T
    np.testing.assert_allclose(panel.grad_heat._matrix, expected, rtol=1e-6)
    ticks = panel.grad_heat.plot.getAxis("left")._tickLevels[0]
    assert [t[1] for t in ticks] == names  # its rows named by their layers
    source.push("metrics", {"rows": metric_rows(21, 30)})
    qtbot.waitUntil(lambda: panel.grad_heat._matrix.shape == (5, 6), timeout=5000)
    xs, _ys = panel.curves.series("loss")
    assert list(xs) == list(range(1, 31))
    # nothing recorded from step 30 to 300 (no window watched): the curves break there, no line across
    source.push("metrics", {"rows": metric_rows(300, 310)})
    qtbot.waitUntil(lambda: panel.grad_heat._matrix.shape == (5, 9), timeout=5000)
    xs, ys = panel.grad_curve.series("g0")
    assert list(xs[:6]) == [5, 10, 15, 20, 25, 30] and list(xs[7:]) == [300, 305, 310]
    assert xs[6] == 299.5 and np.isnan(ys[6]) and np.isfinite(ys[:6]).all() and np.isfinite(ys[7:]).all()
    info = panel.grad_curve._hover_info(panel.grad_curve.step_scene_pos(299.5, -3))
    assert info is not None and all(np.isfinite(r["value"]) for r in info["series"])  # a break has no value


def test_pause_and_step_send_the_commands_when_control_was_granted(run, qtbot):
    win, source = run
    win.toggle_play()  # running: Pause
    assert source.commands()[-1] == {"cmd": "pause"}
    source.push("state", {"state": "paused", "step": 20})
    qtbot.waitUntil(lambda: win.session.state != RUNNING, timeout=5000)
    win.toggle_play()
    win.step_once()
    assert source.commands()[-2:] == [{"cmd": "play"}, {"cmd": "step", "n": 1}]
    win.panel.settings.lr.setValue(0.05)  # Run > Learning rate: applies live
    assert source.commands()[-1] == {"cmd": "set_lr", "lr": 0.05}


def test_a_read_only_run_says_so_and_sends_nothing(qtbot, settings):
    win, source = attached(qtbot, settings, control=False)
    try:
        before = list(source.sent)
        assert not win.panel.settings.lr.isEnabled()
        assert not win.act_play.isEnabled() and not win.act_step.isEnabled()  # greyed, as for a followed run
        win.toggle_play()  # (Space, had it been bound)
        qtbot.waitUntil(lambda: win.notice.label.text() == READ_ONLY, timeout=5000)
        assert source.sent == before
    finally:
        win.close()


def test_the_stream_end_leaves_the_views_and_shows_a_notice(run, qtbot):
    win, source = run
    panel = win.panel
    panel.select_layer("features.3")
    shown = panel._shown
    source.push("bye", {"reason": "the training script ended"})
    qtbot.waitUntil(lambda: win.session.state == FINISHED, timeout=5000)
    qtbot.waitUntil(lambda: "ended" in win.notice.label.text(), timeout=5000)
    assert win.notice.label.text() == ("The training run at 127.0.0.1:5000 ended (the training script ended); "
                                       "its last views stay on show.")
    assert panel._shown is shown and panel.pages.currentIndex() == PAGE_MAPS and len(panel.maps.rows) == 1
    assert win.status_state.text() == "■ finished"
    qtbot.waitUntil(lambda: "the run has ended" in panel.stats.text(), timeout=3000)
    panel.select_layer("rnn")  # still browsable
    assert panel.pages.currentIndex() == PAGE_GATES


def test_the_timeline_scrubs_back_through_a_watched_run(run, qtbot):
    win, source = run
    panel = win.panel
    panel.select_layer("features.3")
    for step in (30, 40):
        source.push("snapshot", snapshot_fields(step), snapshot_arrays(step))
        qtbot.waitUntil(lambda step=step: panel._shown.step == step, timeout=5000)
    assert panel.timeline.steps() == [20, 30, 40]
    panel.view_kept(panel.timeline.at(0))
    np.testing.assert_array_equal(panel.maps._maps[0], snapshot_arrays(20)["act/features.3"])
    panel.go_live()
    np.testing.assert_array_equal(panel.maps._maps[0], snapshot_arrays(40)["act/features.3"])


def test_a_segmentation_model_shows_its_class_map(qtbot, settings):
    win, _source = attached(qtbot, settings, segmentation=True)
    try:
        seg = win.panel.segmentation
        qtbot.waitUntil(lambda: seg.updates > 0, timeout=5000)
        assert win.panel._output_stack.currentWidget() is seg
        assert [label for label, _k, _m in seg._data["rows"]] == ["image", "prediction", "truth", "errors"]
        classes = snapshot_arrays(20, segmentation=True)["seg/classes"]  # 28x28, drawn 4x as large
        np.testing.assert_array_equal(seg._data["rows"][1][2][0], np.kron(classes, np.ones((4, 4), np.int64)))
        assert seg.legend.names() == ["class 0", "class 1", "class 2"]
    finally:
        win.close()


def test_a_second_run_attached_takes_the_first_ones_place(run, qtbot):
    win, source = run
    first = win.session
    other = FakeSource()
    assert win.attach_opened(Opened(other, welcome(role="viewer"), "10.0.0.2:7001", True))
    assert source.closed and not first.is_alive and win.session is not first
    assert win.family == "watch" and win.family_combo.count() == len(PANELS) + 1
    assert win.panel.description.text().endswith("read-only")
    other.push("snapshot", snapshot_fields(3), snapshot_arrays(3))
    qtbot.waitUntil(lambda: win.panel._shown is not None and win.panel._shown.step == 3, timeout=5000)
    assert win.panel.timeline.steps() == [3]  # the first run's views are gone with it


def test_another_model_from_the_model_box_detaches(run, qtbot):
    win, source = run
    session = win.session
    win.family_combo.setCurrentIndex(0)  # the RBM
    assert win.family == "rbm" and win.session is not session
    assert source.closed and not session.is_alive  # the connection closed, not the script
    assert [win.family_combo.itemData(i) for i in range(win.family_combo.count())] == list(PANELS)
    assert win.act_reset.isEnabled() and win.device_combo.isEnabled()


def test_attach_faults_are_notices_naming_the_address_or_folder(run, tmp_path):
    win, _source = run
    session = win.session
    assert not win.attach_to("127.0.0.1:1", token="x")
    assert win.notice.label.text().startswith("Could not attach: cannot connect to 127.0.0.1:1")
    assert win.notice.property("error")
    assert not win.attach_to(str(tmp_path / "nowhere"))
    assert win.notice.label.text() == f"Could not attach: {tmp_path / 'nowhere'}: no such folder"
    assert win.session is session and session.is_alive  # the run on show stays


def test_attaching_from_the_window_over_a_real_connection(qtbot, settings, tmp_path, monkeypatch):
    from explorer.core.wire.server import FrameServer
    from tests.watch_fakes import model_description

    monkeypatch.setenv("NETWORK_EXPLORER_RUNTIME", str(tmp_path / "runtime"))
    server = FrameServer(token="secret", model=model_description())
    server.start()
    settings.setValue("training/process", False)
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    try:
        host, port = server.address
        assert not win.attach_to(f"{host}:{port}", token="wrong")
        assert win.notice.label.text() == f"Could not attach: 127.0.0.1:{port}: wrong token"
        assert win.family == "rbm"
        assert win.attach_to(f"{host}:{port}", token="secret")
        assert win.family == "watch" and win.session.control
        server.publish("snapshot", snapshot_fields(5), snapshot_arrays(5), droppable=True, keep_as_latest=True)
        qtbot.waitUntil(lambda: win.panel._shown is not None, timeout=5000)
        win.session.pause()
        assert server.wait_command(5) in ({"cmd": "snapshot"}, {"cmd": "pause"})
    finally:
        win.close()
        server.close()


def test_the_attach_dialog_fills_in_the_newest_token_file(qtbot, tmp_path, monkeypatch):
    from explorer.core.wire.auth import write_token_file
    from explorer.gui.window.attach import AttachDialog

    monkeypatch.setenv("NETWORK_EXPLORER_RUNTIME", str(tmp_path / "runtime"))
    path = write_token_file(None, {"host": "127.0.0.1", "port": 7000, "token": "tok-7000", "name": "MyCNN"})
    dialog = AttachDialog()
    qtbot.addWidget(dialog)
    assert (dialog.target(), dialog.token(), dialog.follow()) == ("127.0.0.1:7000", "tok-7000", False)
    assert dialog.token_note.text() == f"From {path} (MyCNN)."
    dialog.address.setText(str(tmp_path))  # a folder needs no token
    assert not dialog.token_edit.isEnabled() and dialog.token() == "" and not dialog.follow_box.isEnabled()
    dialog.address.setText("127.0.0.1:7000")
    assert dialog.token() == "tok-7000"
    dialog.address.setText("10.0.0.2:7000")  # another host on the same port: the file's token goes away
    assert dialog.token() == "" and dialog.token_note.text().startswith("No token file for that address")
    dialog.address.setText("localhost:7000")
    assert dialog.token() == "tok-7000"
    dialog.address.setText("evil.example:7000")
    assert dialog.token() == ""
    dialog.token_edit.setText("typed-by-hand")  # a token the user typed stays whatever the address
    dialog.address.setText("10.0.0.3:7001")
    assert dialog.token() == "typed-by-hand"


def test_the_attach_dialog_without_a_token_file(qtbot, tmp_path, monkeypatch):
    from explorer.gui.window.attach import AttachDialog

    monkeypatch.setenv("NETWORK_EXPLORER_RUNTIME", str(tmp_path / "runtime"))
    dialog = AttachDialog()
    qtbot.addWidget(dialog)
    assert dialog.target() == "" and not dialog.ok_button.isEnabled()
    assert dialog.token_note.text().startswith("No token file found")
    dialog.address.setText("10.0.0.2:7001")
    dialog.token_edit.setText("abc")
    dialog.follow_box.setChecked(True)
    assert (dialog.target(), dialog.token(), dialog.follow()) == ("10.0.0.2:7001", "abc", True)


def test_file_menu_offers_attach(run):
    win, _source = run
    titles = [a.text() for a in win.menuBar().actions()[0].menu().actions()]
    assert "Attach to a training run…" in titles


def test_mosaic_columns_fill_the_place():
    assert mosaic_columns((16, 10, 10), 800, 200) == 8  # 2 rows of 8 in a wide, short place
    assert mosaic_columns((16, 10, 10), 200, 200) == 4
    assert mosaic_columns((1, 28, 28), 50, 500) == 1


# -- presentation mode -------------------------------------------------------------------------------------



@pytest.mark.parametrize("size", [(1366, 768), (1600, 1000)])
def test_every_view_is_large_enough_in_presentation_mode(qtbot, settings, app_look, size):
    from tests.test_gui_presentation import _views

    win, _source = attached(qtbot, settings, size=size)
    small = []
    try:
        win.enter_presentation()
        screen = win.screen().geometry().size()
        qtbot.waitUntil(lambda: win.isFullScreen() and win.size() == screen, timeout=3000)
        win.setGeometry(0, 0, *size)
        qtbot.waitUntil(lambda: win.size() == QtCore.QSize(*size), timeout=3000)
        assert {n for n, d in win.docks.items() if d.isVisible()} == {"watchGradientsDock", "watchCurvesDock"}
        for layer in ("features.3", "classifier.0", "rnn", "features.4"):
            win.panel.select_layer(layer)
            try:
                qtbot.waitUntil(lambda: all(h >= PRESENTATION_MIN_VIEW_PX for _n, h in _views(win)), timeout=2000)
            except pytestqt.exceptions.TimeoutError:
                pass
            views = _views(win)
            assert views, layer
            small += [(layer, name, h) for name, h in views if h < PRESENTATION_MIN_VIEW_PX]
        assert small == [], repr(small)
        win.leave_presentation()
        assert win.panel.grad_curve.isVisible()
    finally:
        win.leave_presentation()
        win.close()


# -- the command line --------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["attach"], "the following arguments are required: HOST:PORT|FOLDER"),
    (["attach", "nonsense:port"], "nonsense:port: expected HOST:PORT (a port from 1 to 65535) or a watch folder"),
    (["attach", "/no/such/folder"], "/no/such/folder: no such folder"),
    (["attach", "127.0.0.1:7000", "--token", " "], "--token: expected a token, got an empty one"),
    (["attach", "127.0.0.1:7000", "--token", "a", "--token-file", "b"],
     "argument --token-file: not allowed with argument --token"),
    (["attach", "127.0.0.1:7000", "--token", "a", "--tls", "--cafile", "/no/such/ca.pem"],
     "/no/such/ca.pem: not a certificate this system can read (No such file or directory)"),
])
def test_attach_with_bad_input_exits_2_with_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"explorer: error: {message}\n"


def test_attach_names_a_bad_token_file_and_a_refused_address(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NETWORK_EXPLORER_RUNTIME", str(tmp_path / "runtime"))
    missing = tmp_path / "t.json"
    assert main(["attach", "127.0.0.1:7000", "--token-file", str(missing)]) == 2
    assert capsys.readouterr().err == f"explorer: error: --token-file {missing}: cannot read: no such file\n"
    (tmp_path / "bad.json").write_text("[1]")
    assert main(["attach", "127.0.0.1:7000", "--token-file", str(tmp_path / "bad.json")]) == 2
    assert capsys.readouterr().err.startswith(f"explorer: error: --token-file {tmp_path / 'bad.json'}: not a token file")
    assert main(["attach", "127.0.0.1:1", "--token", "x"]) == 2
    assert capsys.readouterr().err == ("explorer: error: cannot connect to 127.0.0.1:1 (Connection refused); is a "
                                       "script watching on this port?\n")
    assert main(["attach", "127.0.0.1:7000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("explorer: error: 127.0.0.1:7000: no token (pass --token or --token-file; none for "
                          "127.0.0.1:7000 in ") and err.count("\n") == 1


def test_attach_opens_the_window_on_the_run(monkeypatch, tmp_path):
    """Good input: the run is opened first, then the window gets it (run_app is not started here)."""
    from explorer.core.wire.server import FrameServer
    from tests.watch_fakes import model_description

    seen = {}
    monkeypatch.setattr("explorer.gui.app.run_app", lambda **kw: seen.update(kw) or 0)
    server = FrameServer(token="tok", model=model_description())
    server.start()
    try:
        host, port = server.address
        assert main(["attach", f"{host}:{port}", "--token", "tok", "--follow"]) == 0
        opened = seen["attach"]
        assert opened.where == f"127.0.0.1:{port}" and opened.welcome["role"] == "viewer" and opened.live
        opened.source.close()
    finally:
        server.close()


def test_the_gui_module_list_is_unchanged_for_families():
    """A watched run has no family: the families' panels (and the Model menu's order) are as they were."""
    from explorer.core.families.registry import FAMILIES

    assert set(PANELS) == set(FAMILIES) and "watch" not in PANELS and set(EXTERNAL_PANELS) == {"watch"}
    assert QtWidgets.QApplication.instance() is not None


def test_the_views_export_and_the_panel_records_as_the_others_do(run, qtbot, tmp_path):
    win, source = run
    panel = win.panel
    qtbot.waitUntil(lambda: panel.grad_heat._matrix is not None, timeout=5000)
    panel.grad_heat.export_png(str(tmp_path / "heat.png"))
    panel.curves.export_csv(str(tmp_path / "curves.csv"))
    assert (tmp_path / "heat.png").stat().st_size > 1000
    lines = (tmp_path / "curves.csv").read_text().splitlines()
    assert lines[0] == "series,step,value" and lines[1] == "loss,1.0,1.0"
    rec = win.recorder
    assert rec.start(fps=20)
    for step in (21, 22, 23):
        source.push("snapshot", snapshot_fields(step), snapshot_arrays(step))
        qtbot.waitUntil(lambda step=step: panel._shown.step == step, timeout=5000)
    qtbot.waitUntil(lambda: len(rec.frames) >= 3, timeout=5000)
    assert rec.stop() >= 3 and rec.frames[0].ndim == 3
    rec.discard()


def test_on_a_small_screen_the_maps_fill_their_place_without_row_labels(qtbot, settings):
    """At 1366x768 the maps of one layer take the width their title leaves: no label column beside them
    (the title above names the layer), and as many per row as draws them largest in the place they have."""
    from explorer.gui.panels.watch_panel import mosaic_columns

    win, _source = attached(qtbot, settings, size=(1366, 768))
    try:
        maps = win.panel.maps
        qtbot.waitUntil(lambda: bool(maps.rows), timeout=5000)
        assert not maps.labels and maps.label_px() == 0 and maps.rows[0]["label"] is None
        shape = maps.rows[0]["shape"]
        best = mosaic_columns(shape, maps.width(), maps.height() - 2 * maps.frameWidth())
        assert maps.rows[0]["cols"] == min(best, shape[0])
    finally:
        win.close()


def test_a_gradient_curve_breaks_before_its_first_value_after_a_gap(run, qtbot):
    """A layer without a norm in the record right after a gap (no gradient that step) breaks before its next
    value, in the same batch or a later one: its curve is never joined across the gap."""
    win, _source = run
    panel = win.panel
    qtbot.waitUntil(lambda: panel.grad_heat._matrix is not None, timeout=5000)
    panel.clear_curves()
    n = 5
    panel._add_gradients([0, 10, 20, 30], np.ones((4, n)))
    after = np.ones((3, n))
    after[0, 0] = np.nan
    panel._add_gradients([500, 510, 520], after)
    xs, ys = panel.grad_curve.series("g0")
    assert list(xs) == [0, 10, 20, 30, 509.5, 510, 520] and np.isnan(ys[4]) and np.isfinite(np.delete(ys, 4)).all()
    xs, ys = panel.grad_curve.series("g1")
    assert list(xs) == [0, 10, 20, 30, 499.5, 500, 510, 520] and np.isnan(ys[4])
    # a gap after which layer 2 has no value in the whole batch: its break waits for its next value
    only_nan = np.ones((2, n))
    only_nan[:, 2] = np.nan
    panel._add_gradients([2000, 2010], only_nan)
    panel._add_gradients([2020], np.ones((1, n)))
    xs, ys = panel.grad_curve.series("g2")
    assert list(xs[-3:]) == [520, 2019.5, 2020] and np.isnan(ys[-2])
    xs, _ys = panel.grad_curve.series("g3")
    assert list(xs[-4:]) == [1999.5, 2000, 2010, 2020]  # the others broke where the gap was
