"""The command line, run as a user would run it (subprocesses where the exit code matters)."""

import ast
import json
import re
import subprocess
import sys

import pytest

from explorer import __version__
from explorer.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, timeout=120)


def test_version():
    r = run("--version")
    assert r.returncode == 0 and __version__ in r.stdout


def test_help_and_version_answer_without_loading_torch():
    """``--help`` took 1.8 s, most of it loading torch: the sequence tasks' names came from the module that
    generates them. The help of every command, the version and the list of presets (3 s) now come without it."""
    code = ("import sys\nfrom explorer.cli import main\n"
            "for argv in (['--version'], ['--help'], ['train', '--help'], ['train', 'lstm', '--help'],\n"
            "             ['train', 'cnn', '--help'], ['snapshot', '--help'], ['serve', '--help'], ['spec', '--help'],\n"
            "             ['spec', 'presets']):\n"
            "    try:\n        main(argv)\n    except SystemExit as exc:\n        assert exc.code in (0, None), argv\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "--task {adding,recall,sine,sawtooth,text}" in r.stdout and __version__ in r.stdout
    assert "\nlenet5: LeNet-5" in r.stdout
    assert r.stderr.strip() == "False"


def test_output_into_a_pipe_its_reader_closed_is_no_error():
    """``explorer spec presets | head -1`` said "explorer: error: [Errno 32] Broken pipe" and exited 2: the
    reader that closed the pipe had what it wanted. Now nothing is said, and the status is a closed pipe's."""
    r = subprocess.Popen([sys.executable, "-m", "explorer", "spec", "presets"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    r.stdout.close()  # (closed before anything is written: every write fails)
    err = r.stderr.read().decode()
    assert r.wait(timeout=60) in (0, 141) and err == "", err


def test_train_rbm_json(tmp_path):
    r = run("train", "rbm", "--dataset", "digits", "--epochs", "3", "--hidden", "32", "--device", "cpu",
            "--json", "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["family"] == "rbm" and res["device"] == "cpu" and res["epochs"] == 3
    assert res["samples_per_s"] > 0
    assert len(res["history"]) == 3
    assert res["recon_error"] == res["history"][-1]["heldout_recon_error"]
    assert res["history"][-1]["heldout_recon_error"] < res["history"][0]["heldout_recon_error"]
    assert (tmp_path / "run" / "weights.safetensors").exists()
    assert "steps" in r.stderr  # the progress bar goes to stderr


@pytest.mark.parametrize("args,msg", [
    (["train", "rbm", "--lr", "-1"], "--lr"),
    (["train", "rbm", "--hidden", "zero"], "--hidden"),
    (["train", "rbm", "--dataset", "cifar"], "invalid choice"),
    (["train", "rbm", "--device", "cuda:7"], "device"),
    (["train", "rbm", "--dataset", "mnist", "--data-dir", "/nonexistent-folder"], "nonexistent-folder"),
    (["train", "rbm", "--upscale", "9"], "upscale"),
    (["train", "rbm", "--momentum", "1.5"], "momentum"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_line(args, msg, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("explorer: error:") and msg in err


def test_train_reads_idx_files(tmp_path):
    import gzip
    import struct

    import numpy as np
    rng = np.random.default_rng(0)
    imgs = (rng.random((50, 6, 6)) * 255).astype(np.uint8)
    labels = rng.integers(0, 10, 50).astype(np.uint8)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 50, 6, 6) + imgs.tobytes())
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", 50)
                                                      + labels.tobytes())
    r = run("train", "rbm", "--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1", "--json",
            "--quiet", "--hidden", "5", "--batch-size", "10")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["n_visible"] == 36 and res["steps"] == 4  # 40 training images in batches of 10


def test_train_rbm_from_a_preset_and_a_spec_file(tmp_path):
    r = run("train", "rbm", "--preset", "rbm-digits", "--epochs", "1", "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    from explorer.core.spec.network import load_preset, save_spec
    preset = load_preset("rbm-digits")
    assert res["hidden"] == preset.layers[0].params["hidden"] and res["n_visible"] == 64
    spec = load_preset("rbm-digits")
    spec.layers[0].params["hidden"] = 7
    spec.input_shape = (36,)  # a 6x6 input: bars and stripes
    save_spec(spec, tmp_path / "tiny.json")
    r = run("train", "rbm", "--spec", str(tmp_path / "tiny.json"), "--epochs", "1", "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert (res["hidden"], res["n_visible"], res["dataset"]) == (7, 36, "bars")


def test_spec_commands(tmp_path):
    r = run("spec", "presets")
    assert r.returncode == 0 and "lenet5" in r.stdout
    r = run("spec", "summary", "--preset", "lenet5")
    assert r.returncode == 0 and "61,706" in r.stdout.replace(" ", "").replace("61706", "61,706")
    from pathlib import Path
    r = run("spec", "check", str(Path(__file__).resolve().parents[1] / "samples" / "lenet5.json"))
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "network-explorer-spec", "version": 1, "family": "cnn",
                               "input_shape": [1, 5, 5],
                               "layers": [{"type": "Conv2d", "params": {"out_channels": 2, "kernel_size": 7}}]}))
    r = run("spec", "check", str(bad))
    assert r.returncode == 2 and "Conv2d #1" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run("spec", "export", "--preset", "lenet5", "--out", str(tmp_path / "m.py"))
    assert r.returncode == 0 and "class Network" in (tmp_path / "m.py").read_text()


def test_train_autoencoder_json(tmp_path):
    r = run("train", "autoencoder", "--noise", "gaussian", "--noise-level", "0.3", "--hidden", "16", "--epochs", "3",
            "--device", "cpu", "--json", "--quiet", "--out", str(tmp_path / "ae"))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["family"] == "autoencoder" and res["noise"] == "gaussian" and res["epochs"] == 3
    assert res["loss"] == res["history"][-1]["heldout_loss"] < res["history"][0]["heldout_loss"]
    assert (tmp_path / "ae" / "weights.safetensors").exists()
    r = run("train", "autoencoder", "--noise", "pink")
    assert r.returncode == 2 and "--noise" in r.stderr


def test_train_mlp_reports_accuracy_and_gradient_norms():
    r = run("train", "mlp", "--hidden", "16,16,16,16,16", "--init", "relu-he", "--lr", "0.05", "--epochs", "2",
            "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["family"] == "mlp" and res["init"] == "relu-he" and 0.0 <= res["accuracy"] <= 1.0
    assert len(res["grad_norms"]) == 2 and len(res["grad_norms"][0]) == 6  # 5 hidden + output layer
    r = run("train", "mlp", "--hidden", "16,x")
    assert r.returncode == 2 and "--hidden" in r.stderr


def test_train_dbn_stacks_rbms_and_writes_samples(tmp_path):
    out = tmp_path / "dreams.png"
    r = run("train", "dbn", "--hidden", "24,12", "--epochs", "2", "--samples", "16", "--gibbs-sweeps", "5",
            "--samples-out", str(out), "--device", "cpu", "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["family"] == "dbn" and res["epochs"] == 4 and res["epochs_per_layer"] == 2  # 2 layers x 2 epochs
    assert [(d["layer"], d["n_in"], d["hidden"]) for d in res["layers"]] == [(1, 64, 24), (2, 24, 12)]
    for d in res["layers"]:  # each layer's own held-out error, measured at the end of its stage
        assert 0.0 < d["heldout_recon_error"] < d["first_epoch_heldout_recon_error"] + 0.05
    assert res["recon_error"] == res["layers"][-1]["heldout_recon_error"]
    from PIL import Image

    with Image.open(out) as im:  # 16 samples of 8x8 digits, 8 per row, 1-pixel gaps, zoomed 4x
        assert im.size == ((8 * 9 + 1) * 4, (2 * 9 + 1) * 4)
    r = run("train", "dbn", "--hidden", "0")
    assert r.returncode == 2 and "hidden" in r.stderr


@pytest.mark.parametrize("panel,extra", [("dae", []), ("gradients", ["--hidden", "8,8,8"]),
                                         ("pretrain", ["--hidden", "8,8", "--pretrain-epochs", "1"])])
def test_snapshot_other_panels(tmp_path, panel, extra):
    out = tmp_path / f"{panel}.png"
    r = subprocess.run([sys.executable, "-m", "explorer", "snapshot", panel, "--steps", "20", "--out", str(out),
                        "--size", "1000x700", *extra], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0, r.stderr
    from PIL import Image

    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (1000, 700)


def test_a_snapshot_smaller_than_its_panel_can_be_is_refused(tmp_path):
    """Qt kept the window at its smallest: --size 100x100 wrote a 668x611 picture, and --json said 100x100."""
    out = tmp_path / "small.png"
    r = subprocess.run([sys.executable, "-m", "explorer", "snapshot", "rbm", "--steps", "5", "--out", str(out),
                        "--size", "800x500"], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 2
    assert re.search(r"^explorer: error: --size 800x500: this panel's window cannot be that small; it needs at least "
                     r"\d+x\d+$", r.stderr, re.M), r.stderr
    assert not out.exists()


def test_startup_probe_notes_the_first_painted_frame(tmp_path):
    """The start-up benchmark's hook: the app writes the times of its first painted window (the start-up
    window, shown while torch loads) and of the main window's first paint, then quits by itself."""
    import json
    import os
    import time

    out = tmp_path / "painted"
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "explorer"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path),
                            "NETWORK_EXPLORER_STARTUP_PROBE": str(out)})
    assert r.returncode == 0, r.stderr
    times = json.loads(out.read_text())
    assert t0 < times["window"] <= times["ready"] < time.time()


def test_the_app_asks_openmp_to_wait_passively_and_a_users_script_keeps_the_default():
    """Training runs on a plain thread: spinning idle OpenMP workers would slow it (see explorer/cli/__init__.py).
    A user's own script that imports explorer to watch its model trains on its main thread, where passive
    waiting slowed it: ``import explorer`` leaves the policy alone."""
    import os

    def policy(module: str, **extra: str) -> str:
        code = f"import {module}, os; print(os.environ.get('OMP_WAIT_POLICY', 'unset'))"
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env={**env, **extra})
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    assert policy("explorer") == "unset"
    assert policy("explorer.cli") == "PASSIVE"
    assert policy("explorer.cli", OMP_WAIT_POLICY="ACTIVE") == "ACTIVE"


# -- the package's structure: one module per command, shared helpers in common, no cycles ------------------------

def _cli_modules() -> dict[str, "ast.Module"]:
    """Every module of ``explorer.cli`` (imported, then its source parsed), by dotted name."""
    import ast
    import importlib
    import pkgutil
    from pathlib import Path

    import explorer.cli

    trees = {"explorer.cli": ast.parse(Path(explorer.cli.__file__).read_text(encoding="utf-8"))}
    for info in pkgutil.iter_modules(explorer.cli.__path__, "explorer.cli."):
        if info.name != "explorer.cli.__main__":  # importing it would run the program
            importlib.import_module(info.name)
        path = Path(explorer.cli.__path__[0]) / (info.name.rsplit(".", 1)[1] + ".py")
        trees[info.name] = ast.parse(path.read_text(encoding="utf-8"))
    return trees


def _imports(module: str, tree) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import in ``tree``, in functions too; relative
    imports resolved against ``module`` (a package's own name counts as its package)."""
    import ast

    package = module if module == "explorer.cli" else module.rsplit(".", 1)[0]
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found += [(base, alias.name) for alias in node.names]
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_the_cli_package_has_a_module_per_command():
    names = set(_cli_modules())
    assert {"explorer.cli", "explorer.cli.common", "explorer.cli.rbm", "explorer.cli.autoencoder", "explorer.cli.mlp",
            "explorer.cli.cnn", "explorer.cli.fcn", "explorer.cli.recurrent", "explorer.cli.spec",
            "explorer.cli.export", "explorer.cli.inspect", "explorer.cli.snapshot", "explorer.cli.gui",
            "explorer.cli.train"} <= names


def test_no_cli_module_imports_a_private_name_from_another_module():
    offences = [f"{module}: from {source} import {name}"
                for module, tree in _cli_modules().items()
                for source, name in _imports(module, tree)
                if source.split(".")[0] == "explorer" and source != module
                and (_is_private(name or "") or any(_is_private(part) for part in source.split(".")))]
    assert offences == []


def test_common_imports_no_command_module_and_the_cli_imports_have_no_cycle():
    trees = _cli_modules()
    modules = set(trees)

    def cli_imports(module: str) -> set[str]:
        """The other ``explorer.cli`` modules ``module`` imports (``from explorer.cli import rbm`` included)."""
        out = set()
        for source, name in _imports(module, trees[module]):
            if name and f"{source}.{name}" in modules:
                out.add(f"{source}.{name}")
            elif source in modules:
                out.add(source)
        out.discard(module)
        return out

    graph = {m: cli_imports(m) for m in modules}
    assert graph["explorer.cli.common"] == set()
    # the package imports the command modules, never the reverse (only ``python -m explorer.cli`` runs its main)
    assert [m for m, deps in graph.items() if "explorer.cli" in deps] == ["explorer.cli.__main__"]

    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, "import cycle: " + " -> ".join(path + (module,))
        if module not in done:
            for dep in sorted(graph[module]):
                visit(dep, path + (module,))
            done.add(module)

    for m in sorted(modules):
        visit(m, ())


@pytest.mark.parametrize("argv,command", [
    (["gui"], "explorer.cli.gui.cmd_gui"),
    (["train", "rbm"], "explorer.cli.rbm.cmd_train_rbm"),
    (["train", "ae"], "explorer.cli.autoencoder.cmd_train_autoencoder"),
    (["train", "dae"], "explorer.cli.autoencoder.cmd_train_autoencoder"),
    (["train", "dbn"], "explorer.cli.mlp.cmd_train_dbn"),
    (["train", "mlp"], "explorer.cli.mlp.cmd_train_mlp"),
    (["train", "fcn"], "explorer.cli.fcn.cmd_train_fcn"),
    (["train", "cnn"], "explorer.cli.cnn.cmd_train_cnn"),
    (["train", "lstm"], "explorer.cli.recurrent.cmd_train_recurrent"),
    (["train", "rnn"], "explorer.cli.recurrent.cmd_train_recurrent"),
    (["snapshot", "rbm", "--out", "x.png"], "explorer.cli.rbm.cmd_snapshot_rbm"),
    (["snapshot", "ae", "--out", "x.png"], "explorer.cli.autoencoder.cmd_snapshot_autoencoder"),
    (["snapshot", "mlp", "--out", "x.png"], "explorer.cli.mlp.cmd_snapshot_mlp"),
    (["snapshot", "pretrain", "--out", "x.png"], "explorer.cli.mlp.cmd_snapshot_mlp"),
    (["snapshot", "rnn", "--out", "x.png"], "explorer.cli.recurrent.cmd_snapshot_recurrent"),
    (["snapshot", "segmentation", "--out", "x.png"], "explorer.cli.fcn.cmd_snapshot_fcn"),
    (["snapshot", "skips", "--out", "x.png"], "explorer.cli.fcn.cmd_snapshot_fcn_compare"),
    (["snapshot", "cnn", "--out", "x.png"], "explorer.cli.cnn.cmd_snapshot_cnn"),
    (["spec", "presets"], "explorer.cli.spec.run_spec_command"),
    (["export", "run"], "explorer.cli.export.cmd_export"),
    (["inspect", "run"], "explorer.cli.inspect.cmd_inspect"),
])
def test_each_command_names_the_function_that_runs_it(argv, command):
    from explorer.cli import build_parser

    func = build_parser().parse_args(argv).func
    assert f"{func.__module__}.{func.__qualname__}" == command


def test_usage_lines_name_the_program_as_it_was_invoked(capsys):
    from explorer.cli import build_parser

    assert build_parser().prog == "network-explorer"  # the console script's name (pyproject.toml)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "rbm", "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage: network-explorer train rbm [-h]")
    with pytest.raises(SystemExit):
        main(["--help"], prog="explorer-test")
    assert capsys.readouterr().out.startswith("usage: explorer-test [-h] [--version]")
    r = run("snapshot", "cnn", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m explorer snapshot cnn [-h]")
    r = run("snapshot", "cnn")  # a bad argument is still the one-line error, exit 2
    assert r.returncode == 2 and r.stderr == "explorer: error: the following arguments are required: --out\n"


@pytest.mark.parametrize("argv, message", [
    (["--run", "{tmp}/nowhere"], "--run {tmp}/nowhere: no such folder"),
    (["--run", "{tmp}/file"], "--run {tmp}/file: not a folder"),
    (["--run", "{tmp}"], "--run {tmp}: no run.json, so this is not a Network Explorer run folder"),
    (["--run", "{tmp}/bad"], "--run {tmp}/bad/run.json: "),
    (["--device", "tpu"], "--device tpu: unknown device; choose one of auto, cpu, cuda, mps (or cuda:N)"),
    (["--builder", "nope"], "--builder nope: no such preset (choose one of lenet5, "),
    (["--builder", "{tmp}/none.json"], "{tmp}/none.json: cannot read: no such file"),
], ids=["missing run", "run a file", "no run.json", "bad run.json", "device", "preset", "spec file"])
def test_gui_refuses_a_mistyped_run_device_or_preset_before_the_window(tmp_path, monkeypatch, capsys, argv, message):
    """They opened the window on the default model (a notice in it, nothing on the command line, exit 0)."""
    import explorer.gui.app

    monkeypatch.setattr(explorer.gui.app, "run_app", lambda **kw: pytest.fail("the window opened"))
    (tmp_path / "file").write_text("x")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.json").write_text('{"family": "rbm"}')
    assert main(["gui", *(a.format(tmp=tmp_path) for a in argv)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("explorer: error: " + message.format(tmp=tmp_path)) and err.count("\n") == 1


def test_gui_opens_a_good_run_folder_preset_and_device(tmp_path, monkeypatch):
    import explorer.gui.app

    opened = []
    monkeypatch.setattr(explorer.gui.app, "run_app", lambda **kw: opened.append(kw) or 0)
    assert main(["train", "rbm", "--dataset", "digits", "--epochs", "1", "--hidden", "8", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0
    assert main(["gui", "--run", str(tmp_path / "run"), "--device", "cpu", "--builder", "unet-small"]) == 0
    assert main(["gui", "--device", "cuda:1", "--builder", "samples/lenet5.json"]) == 0
    assert [(kw["run_dir"], kw["builder"]) for kw in opened] == [(str(tmp_path / "run"), "unet-small"),
                                                                 (None, "samples/lenet5.json")]
