"""Model export: ONNX graphs that compute what the live model computes, safetensors weights, the
``export`` command and File › Export model; the live model is never changed by an export."""

import sys

import numpy as np
import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from PySide6 import QtCore, QtWidgets
from safetensors.torch import load_file, safe_open

from explorer.cli import main
from explorer.core.engine.session import TrainingSession
from explorer.core.families.recurrent.trainer import outputs
from explorer.core.families.registry import make_trainer
from explorer.core.persist.export import ExportError, export_onnx, export_plan, export_safetensors
from explorer.core.persist.runfolder import save_run
from explorer.core.spec.network import LayerSpec, NetworkSpec, load_preset, spec_to_dict


def tiny_cnn_spec() -> dict:
    layers = [LayerSpec("Conv2d", {"out_channels": 3, "kernel_size": 3, "stride": 1, "padding": 1}), LayerSpec("ReLU"),
              LayerSpec("LocalContrastNorm", {"size": 3, "eps": 0.01}),
              LayerSpec("MaxPool2d", {"kernel_size": 2, "stride": 2}),
              LayerSpec("Conv2d", {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 0}), LayerSpec("ReLU"),
              LayerSpec("Flatten"), LayerSpec("Linear", {"out_features": 10}), LayerSpec("Softmax")]
    return spec_to_dict(NetworkSpec("cnn", (1, 16, 16), layers, {}, "tiny"))


def tiny_fcn_spec() -> dict:
    """unet-small with a quarter of its channels (the classifier keeps its 4 classes), 32 x 32."""
    spec = load_preset("unet-small")
    spec.input_shape = (1, 32, 32)
    for layer in spec.layers:
        oc = layer.params.get("out_channels")
        if oc is not None and oc != 4:
            layer.params["out_channels"] = oc // 4
    return spec_to_dict(spec)


VEC = dict(device="cpu", batch_size=16)
FCN = dict(spec=tiny_fcn_spec(), n_train=24, n_test=8, eval_samples=8, batch_size=4, device="cpu")
SEQ = dict(hidden=6, n_train=48, eval_samples=16, batch_size=8, device="cpu", compare_every=1)
CASES = {
    "rbm": ("rbm", dict(hidden=7, momentum=0.5, eval_samples=40, **VEC)),
    "autoencoder": ("autoencoder", dict(hidden=7, noise="gaussian", eval_samples=40, **VEC)),
    "autoencoder-tied": ("autoencoder", dict(hidden=5, tied=True, eval_samples=40, **VEC)),
    "mlp": ("mlp", dict(hidden=(9, 7), momentum=0.5, eval_samples=40, **VEC)),
    "mlp-relu": ("mlp", dict(hidden=(9,), init="relu-he", eval_samples=40, **VEC)),
    "compare": ("compare", dict(hidden=(6, 5), pretrain_epochs=1, **VEC)),
    "cnn": ("cnn", dict(spec=tiny_cnn_spec(), eval_samples=40, **VEC)),
    "fcn": ("fcn", dict(FCN, optimizer="adam")),
    "fcn-compare": ("fcn-compare", FCN),
    "lstm-adding": ("lstm", dict(task="adding", length=5, **SEQ)),
    "lstm-text-bias": ("lstm", dict(task="text", length=6, bias=True, **SEQ)),
    "rnn-sine": ("rnn", dict(task="sine", length=5, **SEQ)),
    "rnn-recall": ("rnn", dict(task="recall", length=3, **SEQ)),
}


def trained(case: str, steps: int = 2):
    family, config = CASES[case]
    tr = make_trainer(family, dict(config))
    for _ in range(steps):
        tr.train_step()
    return tr


def input_for(tr, batch: int, extra_time: int = 0) -> torch.Tensor:
    """Held-out data where the family keeps it as vectors, else values in [0, 1] of the input's shape."""
    if tr.family in ("rbm", "autoencoder", "mlp", "compare"):
        return torch.from_numpy(np.ascontiguousarray(tr.dataset.test_x[:batch]))
    shape = list(export_plan(tr).example.shape[1:])
    if tr.family in ("lstm", "rnn"):
        shape[0] += extra_time
    return torch.rand([batch, *shape], generator=torch.Generator().manual_seed(batch))


@torch.no_grad()
def live_outputs(tr, x: torch.Tensor) -> list[torch.Tensor]:
    """What the live trainer's own model computes for ``x``, by the trainer's own functions."""
    if tr.family == "rbm":
        return [tr.rbm.p_h_given_x(x), tr.rbm.reconstruct(x)]
    if tr.family == "autoencoder":
        return list(tr.model(x))
    if tr.family in ("compare", "fcn-compare"):
        return [run.model(x) for run in tr.runs.values()]
    if tr.family in ("lstm", "rnn"):
        return [outputs(tr.model, tr.dataset, x), tr.model(x)[0]]
    return [tr.model(x)]


def state_copy(tr) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in tr.state_tensors().items()}


@pytest.mark.parametrize("case", list(CASES))
def test_onnx_computes_what_the_live_model_computes(tmp_path, case):
    tr = trained(case)
    before = state_copy(tr)
    path = export_onnx(tr, tmp_path / "model.onnx")
    assert path == tmp_path / "model.onnx" and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
    # the live model is untouched: same weights and optimiser state, same device, and still training
    after = tr.state_tensors()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["x"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["family"] == tr.family and meta["step"] == "2"
    run = ReferenceEvaluator(model)
    example_batch = export_plan(tr).example.shape[0]
    for batch, extra_time in ((5, 3), (1, 0)):
        assert batch != example_batch
        x = input_for(tr, batch, extra_time)
        got = run.run(None, {"x": x.numpy()})
        want = live_outputs(tr, x)
        assert len(got) == len(want) == len(model.graph.output)
        for g, w in zip(got, want):
            assert g.shape == tuple(w.shape)
            np.testing.assert_allclose(g, w.numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", ["rbm", "mlp", "compare", "cnn", "fcn-compare", "lstm-adding"])
def test_safetensors_round_trip_equals_state_tensors(tmp_path, case):
    tr = trained(case)
    path = export_safetensors(tr, tmp_path / "weights.safetensors")
    state = tr.state_tensors()
    loaded = load_file(str(path))
    assert loaded.keys() == state.keys() and state
    for k, v in state.items():
        assert torch.equal(loaded[k], v.detach().cpu()), k
    with safe_open(str(path), "pt") as f:
        assert f.metadata()["family"] == tr.family and f.metadata()["step"] == "2"
    # and the file restores a trainer to the same weights
    other = make_trainer(CASES[case][0], dict(CASES[case][1]))
    other.load_state_tensors(loaded)
    assert all(torch.equal(other.state_tensors()[k].cpu(), v.cpu()) for k, v in state.items()
               if not k.startswith("opt."))


def test_the_exported_graph_is_a_copy(tmp_path):
    tr = trained("mlp")
    plan = export_plan(tr)
    live = {p.data_ptr() for p in tr.model.parameters()}
    assert not live & {p.data_ptr() for p in plan.module.parameters()}
    assert tr.model.training and not plan.module.training
    assert all(p.requires_grad for p in tr.model.parameters())
    with torch.no_grad():
        for p in plan.module.parameters():
            p.add_(1.0)
    assert all(torch.equal(a, b) for a, b in zip(state_copy(tr).values(), tr.state_tensors().values()))


def test_rbm_outputs_are_the_lectures_conditionals(tmp_path):
    tr = trained("rbm")
    model = onnx.load(str(export_onnx(tr, tmp_path / "rbm.onnx")))
    assert [o.name for o in model.graph.output] == ["p_h", "reconstruction"]
    x = input_for(tr, 3)
    p_h, recon = ReferenceEvaluator(model).run(None, {"x": x.numpy()})
    W, b, d = (t.numpy().astype(np.float64) for t in (tr.rbm.W, tr.rbm.b, tr.rbm.d))
    want_h = 1 / (1 + np.exp(-(x.numpy() @ W + d)))
    np.testing.assert_allclose(p_h, want_h, atol=1e-5)
    np.testing.assert_allclose(recon, 1 / (1 + np.exp(-(want_h @ W.T + b))), atol=1e-5)


def test_the_comparisons_export_every_network():
    assert export_plan(trained("compare", 1)).output_names == ["random_logits", "rbm_logits", "ae_logits",
                                                              "relu_he_logits"]
    assert export_plan(trained("fcn-compare", 1)).output_names == ["skips_logits", "noskips_logits"]


def test_without_onnx_the_message_says_what_to_install(tmp_path, monkeypatch):
    tr = trained("rbm", 1)
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ExportError, match=r'pip install "onnx>=1.16"') as err:
        export_onnx(tr, tmp_path / "m.onnx")
    assert not list(tmp_path.iterdir())
    assert 'pip install "network-explorer[export]"' in str(err.value) and "\n" not in str(err.value)


def test_a_failed_export_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    tr = trained("mlp", 1)
    target = tmp_path / "m.onnx"
    target.write_bytes(b"the previous export")

    def broken(*args, **kwargs):
        raise RuntimeError("Unsupported operator aten::imaginary\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(ExportError, match="could not be converted to ONNX: Unsupported operator aten::imaginary$"):
        export_onnx(tr, target)
    assert target.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


# -- the command line ----------------------------------------------------------------------------------
@pytest.fixture
def run_folder(tmp_path):
    family, config = CASES["lstm-adding"]
    s = TrainingSession(make_trainer(family, dict(config)))
    s.step(3)
    s.wait(10)
    out = save_run(s, tmp_path / "run")
    state = state_copy(s.trainer)
    s.close()
    return out, state


def test_cli_exports_a_run_folder(tmp_path, run_folder, capsys):
    run, state = run_folder
    rc = main(["export", str(run), "--onnx", str(tmp_path / "o" / "m.onnx"),
               "--safetensors", str(tmp_path / "o" / "w.safetensors")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "m.onnx" in out and "w.safetensors" in out and "step 3" in out
    model = onnx.load(str(tmp_path / "o" / "m.onnx"))
    onnx.checker.check_model(model)
    assert {p.key: p.value for p in model.metadata_props}["step"] == "3"
    loaded = load_file(str(tmp_path / "o" / "w.safetensors"))
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], v) for k, v in state.items())
    assert main(["export", str(run), "--safetensors", str(tmp_path / "only.safetensors")]) == 0


@pytest.mark.parametrize("problem", ["missing", "not_a_run", "corrupt", "no_output"])
def test_cli_bad_paths_exit_2_with_one_line(tmp_path, run_folder, capsys, problem):
    run, _ = run_folder
    target = run
    if problem == "missing":
        target = tmp_path / "nowhere"
    elif problem == "not_a_run":
        target = tmp_path / "empty"
        target.mkdir()
    elif problem == "corrupt":
        (run / "weights.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    args = ["export", str(target)] + ([] if problem == "no_output" else ["--onnx", str(tmp_path / "m.onnx")])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("explorer: error:") and "\n" not in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("outputs", [["--onnx", "{run}/run.json"], ["--safetensors", "{run}/weights.safetensors"],
                                     ["--onnx", "{run}/extra/m.onnx"], ["--onnx", "{run}/../run/m.onnx"],
                                     ["--onnx", "{tmp}/same", "--safetensors", "{tmp}/./same"]])
def test_cli_refuses_writing_into_the_run_folder_or_one_file_twice(tmp_path, run_folder, capsys, outputs):
    """An export over the run's own run.json made the run unreadable; two formats into one file kept one."""
    run, state = run_folder
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    args = [a.format(run=run, tmp=tmp_path) for a in outputs]
    assert main(["export", str(run), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    if "same" in args[1]:
        assert err == f"explorer: error: --onnx and --safetensors both name {args[1]}: give each its own file"
        assert not (tmp_path / "same").exists()
    else:
        assert err == (f"explorer: error: {args[0]} {args[1]}: inside the run folder {run}, which holds the run "
                       f"alone; write the export elsewhere")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # the run is as it was


def test_exports_get_the_permissions_of_an_ordinary_file(tmp_path, run_folder):
    """They were private (0600, the temporary file's) while the run folder's files were 0644."""
    import os
    run, _ = run_folder
    umask = os.umask(0o022)
    os.umask(umask)
    new, kept = tmp_path / "new.onnx", tmp_path / "kept.safetensors"
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    assert main(["export", str(run), "--onnx", str(new), "--safetensors", str(kept)]) == 0
    assert new.stat().st_mode & 0o777 == 0o666 & ~umask
    assert kept.stat().st_mode & 0o777 == 0o640  # a file written over keeps its permissions


# -- the window ----------------------------------------------------------------------------------------
@pytest.fixture
def window(qtbot, tmp_path):
    from explorer.core.families.rbm.trainer import RBMConfig
    from explorer.gui.main_window import MainWindow

    settings = QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(RBMConfig(dataset="digits", hidden=12, batch_size=16, device="cpu"), settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def test_file_menu_exports_the_model_while_it_trains(qtbot, window, tmp_path, monkeypatch):
    file_menu = window.menuBar().actions()[0].menu()
    export_menu = next(a.menu() for a in file_menu.actions() if a.menu() and a.text() == "Export model")
    assert [a.text() for a in export_menu.actions()] == ["ONNX…", "safetensors…"]
    target = tmp_path / "out" / "digits-rbm"  # no suffix typed: .onnx is added
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    window.toggle_play()
    qtbot.waitUntil(lambda: window.session.trainer.step > 5, timeout=10000)
    export_menu.actions()[0].trigger()
    onnx_path = tmp_path / "out" / "digits-rbm.onnx"
    qtbot.waitUntil(lambda: onnx_path.exists() and "Exported" in window.notice.label.text(), timeout=15000)
    window.toggle_play()
    assert window.session.wait(5)
    text = window.notice.label.text()
    assert str(onnx_path) in text and " kB)" in text and window.notice.isVisible()
    assert not window.notice.property("error")
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == ["p_h", "reconstruction"]
    assert window.session.state != "error"


def test_without_onnx_the_menu_says_what_to_install_and_asks_no_file(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    asked = []
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: asked.append(a) or ("", ""))
    window.model_exporter.actions["onnx"].trigger()
    assert asked == []
    assert window.notice.label.text() == ('ONNX export needs the onnx package, which is not installed: '
                                          'pip install "onnx>=1.16" (or pip install "network-explorer[export]")')
    assert window.notice.property("error")
    window.model_exporter.actions["safetensors"].trigger()  # the other format asks as before
    assert len(asked) == 1


def test_export_model_scrubbed_back_says_it_wrote_the_weights_of_now(qtbot, window, tmp_path, monkeypatch):
    """The timeline keeps what the views drew, not the weights: scrubbed back to an older step, File > Export
    model wrote the weights of the step training had reached, and said only that step. The dialog and the
    message now say which weights are written and which step is on show."""
    panel, bar = window.panel, window.timeline_bar
    window.toggle_play()
    qtbot.waitUntil(lambda: len(panel.timeline) >= 3 and window.session.trainer.step > 20, timeout=20000)
    window.toggle_play()
    assert window.session.wait(5)
    qtbot.waitUntil(lambda: bar.slider.isEnabled() and bar.slider.maximum() >= 2, timeout=5000)
    bar.slider.setValue(0)
    shown, now = panel.timeline.at(0).step, window.session.trainer.step
    assert panel.viewing is not None and shown < now
    titles = []
    path = tmp_path / "scrubbed.safetensors"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        lambda _parent, title, *a, **k: titles.append(title) or (str(path), ""))
    window.model_exporter.actions["safetensors"].trigger()
    assert titles == [f"Export the model as safetensors (its weights now, not those of step {shown} on show)"]
    qtbot.waitUntil(lambda: str(path) in window.notice.label.text(), timeout=10000)
    text = window.notice.label.text()
    assert f"at step {now} as safetensors" in text
    assert f"(Its weights at step {now}: the timeline keeps the views of step {shown}, not its weights.)" in text
    loaded = load_file(str(path))
    assert all(torch.equal(loaded[k], v) for k, v in window.session.trainer.state_tensors().items())
    bar.live_button.click()  # live again: nothing more to say
    assert panel.viewing is None
    window.model_exporter.actions["safetensors"].trigger()
    assert titles[-1] == "Export the model as safetensors"
    qtbot.waitUntil(lambda: window.notice.label.text().count("Exported") == 1 and "timeline" not in
                    window.notice.label.text(), timeout=10000)


def test_export_model_writes_safetensors_and_reports_errors(qtbot, window, tmp_path):
    window.session.step(2)
    assert window.session.wait(5)
    before = state_copy(window.session.trainer)
    path = tmp_path / "w.safetensors"
    done = window.model_exporter.export_model("safetensors", path)
    assert done.wait(10)
    qtbot.waitUntil(lambda: str(path) in window.notice.label.text(), timeout=5000)
    assert "at step 2 as safetensors" in window.notice.label.text() and not window.notice.property("error")
    loaded = load_file(str(path))
    after = window.session.trainer.state_tensors()
    assert loaded.keys() == before.keys()
    assert all(torch.equal(loaded[k], before[k]) and torch.equal(after[k], before[k]) for k in before)
    # a folder where the file should go: the error is shown, training is not affected
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    done = window.model_exporter.export_model("onnx", blocker / "m.onnx")
    assert done.wait(10)
    qtbot.waitUntil(lambda: "Could not export" in window.notice.label.text(), timeout=5000)
    assert window.notice.property("error") and str(blocker / "m.onnx") in window.notice.label.text()
    assert window.session.error is None
    window.session.step(1)
    assert window.session.wait(5) and window.session.trainer.step == 3
