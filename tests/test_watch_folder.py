"""Folder mode (explorer.core.watch.folder): a watched run written to a folder and read back as the wire's
frames while it is being written; snapshot files thinned under a byte bound; every bad file a notice that
names it, never a crash."""

from __future__ import annotations

import json
import math
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from explorer.core.watch.folder import (
    ENDED_FILE,
    ENDED_REASON,
    FORMAT,
    METRICS_FILE,
    READ_ONLY,
    SNAPSHOT_DIR,
    WATCH_FILE,
    FolderSource,
    FolderWriter,
    read_snapshot_file,
    snapshot_name,
)

MODEL = {"name": "Tiny", "framework": "torch", "device": "cpu", "layers": [{"name": "fc", "type": "Linear",
         "kind": "linear", "params": 12, "out_shape": [2, 3], "depth": 1}], "grad_layers": ["fc"]}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def arrays_at(step: int, size: int = 16) -> dict[str, np.ndarray]:
    return {"act/fc": np.full((2, size), step, np.float32), "seg/classes": np.arange(6, dtype=np.int64).reshape(2, 3),
            "grad_norms": np.array([0.5, np.nan], np.float32)}


def frames_until(source: FolderSource, want, timeout: float = 5.0) -> list:
    """Frames from the source until ``want(frames)`` holds (or the stream ends or the time is up)."""
    frames: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not want(frames):
        frame = source.next_frame(0.1)
        if frame is not None:
            frames.append(frame)
        elif source.closed_reason is not None:
            break
    return frames


def rows_of(frames) -> list[dict]:
    return [row for f in frames if f.kind == "metrics" for row in f.fields["rows"]]


def notices_of(frames) -> list[str]:
    return [f.fields["text"] for f in frames if f.kind == "notice"]


def test_a_folder_read_while_it_is_written_gives_the_welcome_rows_snapshots_and_the_end(tmp_path):
    clock = Clock()
    writer = FolderWriter(tmp_path / "run", MODEL, clock=clock)
    info = json.loads((tmp_path / "run" / WATCH_FILE).read_text())
    assert info == {"format": FORMAT, "version": 1, "model": MODEL}
    source = FolderSource(tmp_path / "run", poll=0.01)
    first = source.next_frame(1.0)
    assert first.kind == "welcome" and first.fields == {"role": "viewer", "model": MODEL}
    assert source.next_frame(1.0).fields == {"state": "running", "step": 0}  # not ended yet

    writer.add_rows([{"step": 1, "time": 0.1, "loss": 2.0}, {"step": 1, "grad/fc": math.nan}])
    writer.flush()  # the first flush writes at once
    frames = frames_until(source, lambda fs: len(rows_of(fs)) >= 2)
    rows = rows_of(frames)
    assert rows[0] == {"step": 1, "time": 0.1, "loss": 2.0}
    assert rows[1]["step"] == 1 and math.isnan(rows[1]["grad/fc"])  # NaN as null in the file, NaN again here

    # rows are written at most twice a second, unless forced
    writer.add_rows([{"step": 2, "time": 0.2, "loss": 1.5}])
    writer.flush()
    assert (tmp_path / "run" / METRICS_FILE).read_text().count("\n") == 2
    clock.t += 0.5
    writer.flush()
    assert (tmp_path / "run" / METRICS_FILE).read_text().count("\n") == 3
    assert rows_of(frames_until(source, lambda fs: rows_of(fs))) == [{"step": 2, "time": 0.2, "loss": 1.5}]

    # a line still being written is waited for, not an error
    with open(tmp_path / "run" / METRICS_FILE, "a") as fh:
        fh.write('{"step": 3, "lo')
        fh.flush()
        assert frames_until(source, lambda fs: fs, timeout=0.3) == []
        fh.write('ss": 1.25}\n')
    assert rows_of(frames_until(source, lambda fs: rows_of(fs))) == [{"step": 3, "loss": 1.25}]

    writer.write_snapshot(3, 1, 0.3, {"loss": 1.25, "saturated/relu": 0.5}, arrays_at(3))
    snap = frames_until(source, lambda fs: fs)[0]
    assert snap.kind == "snapshot"
    assert snap.fields == {"step": 3, "epoch": 1, "time": 0.3, "scalars": {"loss": 1.25, "saturated/relu": 0.5}}
    assert set(snap.arrays) == {"act/fc", "seg/classes", "grad_norms"}
    np.testing.assert_array_equal(snap.arrays["act/fc"], arrays_at(3)["act/fc"])
    assert snap.arrays["seg/classes"].dtype == np.int64 and not snap.arrays["act/fc"].flags.writeable
    assert np.isnan(snap.arrays["grad_norms"][1])

    source.send("command", {"cmd": "pause"})
    assert notices_of(frames_until(source, lambda fs: fs)) == [READ_ONLY]

    writer.add_rows([{"step": 4, "loss": 1.0}])
    writer.write_snapshot(4, 1, 0.4, {}, arrays_at(4))
    writer.close(step=4)
    assert (tmp_path / "run" / ENDED_FILE).is_file()
    frames = frames_until(source, lambda fs: False, timeout=3.0)
    assert [f.kind for f in frames] == ["metrics", "snapshot", "state"]
    assert frames[-1].fields == {"state": "ended", "step": 4}
    assert source.closed_reason == ENDED_REASON
    assert source.next_frame(0.05) is None


def test_a_finished_folder_is_read_oldest_first_and_a_late_reader_gets_all_of_it(tmp_path):
    writer = FolderWriter(tmp_path, MODEL)
    for step in (5, 10, 15):
        writer.add_rows([{"step": step, "loss": 1 / step}])
        writer.write_snapshot(step, 0, step / 10, {}, arrays_at(step))
    writer.close(step=15)
    source = FolderSource(tmp_path, poll=0.01)
    frames = frames_until(source, lambda fs: False, timeout=3.0)
    assert [f.kind for f in frames] == ["welcome", "metrics", "snapshot", "snapshot", "snapshot", "state"]
    assert [f.fields["step"] for f in frames if f.kind == "snapshot"] == [5, 10, 15]
    assert [r["step"] for r in rows_of(frames)] == [5, 10, 15]


def test_snapshot_files_are_thinned_under_the_bound_evenly_over_the_run_the_newest_kept(tmp_path):
    writer = FolderWriter(tmp_path, MODEL, bound_bytes=1)  # measured below: one file's size
    writer.write_snapshot(0, 0, 0.0, {}, arrays_at(0))
    size = writer.bytes_used
    writer = FolderWriter(tmp_path, MODEL, bound_bytes=8 * size + size // 2, every=1)
    assert not any((tmp_path / SNAPSHOT_DIR).iterdir())  # a new run in the folder starts over
    for step in range(1, 101):
        writer.write_snapshot(step, 0, float(step), {}, arrays_at(step))
        assert writer.bytes_used <= writer.bound_bytes
        on_disk = sorted(int(p.stem) for p in (tmp_path / SNAPSHOT_DIR).iterdir())
        assert on_disk == writer.steps()
        assert on_disk[-1] == step  # the newest is always there
    steps = writer.steps()
    assert writer.every == 16 and writer.thinnings == 4
    assert steps[0] == 1 and len(steps) <= 8
    gaps = np.diff(steps[:-1])
    assert gaps.min() >= 16 and gaps.max() <= 32  # spread evenly over the whole run
    assert not [p for p in (tmp_path / SNAPSHOT_DIR).iterdir() if p.name.startswith(".")]  # no leftovers


def test_a_step_that_goes_back_replaces_the_snapshots_from_there_on(tmp_path):
    writer = FolderWriter(tmp_path, MODEL)
    for step in (1, 2, 3, 4):
        writer.write_snapshot(step, 0, 0.0, {}, arrays_at(step))
    writer.write_snapshot(3, 0, 0.0, {}, arrays_at(30))
    assert writer.steps() == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / SNAPSHOT_DIR).iterdir()) == [snapshot_name(s) for s in (1, 2, 3)]
    assert read_snapshot_file(tmp_path / SNAPSHOT_DIR / snapshot_name(3)).arrays["act/fc"][0, 0] == 30


# -- bad files ------------------------------------------------------------------------------------------

def write_watch(folder: Path, info) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WATCH_FILE).write_text(info if isinstance(info, str) else json.dumps(info))


@pytest.mark.parametrize("content,reason", [
    (None, "not a watch folder (no watch.json"),
    ("{not json", "not a watch file (not JSON)"),
    ([1, 2], "not a watch file (its format is not"),
    ({"format": "something else", "version": 1, "model": {}}, "its format is not"),
    ({"format": FORMAT, "version": 2, "model": {}}, "version 2 is not read here (1)"),
    ({"format": FORMAT, "version": "1", "model": {}}, "'version' must be a positive int"),
    ({"format": FORMAT, "version": 1, "model": [1]}, "'model' must be an object"),
    ("[" * 100 + "]" * 100, "nested too deeply"),
])
def test_a_missing_or_bad_watch_file_is_refused_naming_it(tmp_path, content, reason):
    if content is None:
        tmp_path.mkdir(exist_ok=True)
    else:
        write_watch(tmp_path, content)
    with pytest.raises(ValueError, match="watch.json|not a watch folder") as info:
        FolderSource(tmp_path)
    assert reason in str(info.value) and str(tmp_path) in str(info.value)


def test_a_watch_file_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / WATCH_FILE)
    with pytest.raises(ValueError, match="not a regular file|cannot read|is a"):
        FolderSource(tmp_path)


def safetensors_bytes(header: dict, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


BAD_SNAPSHOTS = {
    "garbage": b"this is not a safetensors file at all",
    "short": b"abc",
    "huge header": struct.pack("<Q", 1 << 40) + b"{}",
    "header not json": struct.pack("<Q", 5) + b"{{{{{",
    "header a list": safetensors_bytes([]),  # type: ignore[arg-type]
    "metadata not strings": safetensors_bytes({"__metadata__": {"step": 3}}),
    "no step": safetensors_bytes({"__metadata__": {"epoch": "1"}}),
    "negative step": safetensors_bytes({"__metadata__": {"step": "-4"}}),
    "scalars not an object": safetensors_bytes({"__metadata__": {"step": "4", "scalars": "[1]"}}),
    "offsets past the end": safetensors_bytes({"__metadata__": {"step": "4"},
                                               "a": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}),
    "an unsigned 64-bit array": safetensors_bytes({"__metadata__": {"step": "4"},
                                                   "a": {"dtype": "U64", "shape": [1], "data_offsets": [0, 8]}},
                                                  b"\0" * 8),
}


def test_bad_snapshot_files_are_notices_naming_each_file_and_the_good_ones_still_come(tmp_path):
    writer = FolderWriter(tmp_path, MODEL)
    snapshots = tmp_path / SNAPSHOT_DIR
    for i, data in enumerate(BAD_SNAPSHOTS.values(), start=1):
        (snapshots / snapshot_name(i)).write_bytes(data)
    os.mkfifo(snapshots / snapshot_name(50))
    (snapshots / "notes.txt").write_text("not a snapshot: ignored")
    writer.write_snapshot(99, 0, 9.9, {"loss": 0.5}, arrays_at(99))
    source = FolderSource(tmp_path, poll=0.01)
    frames = frames_until(source, lambda fs: any(f.kind == "snapshot" for f in fs))
    notices = notices_of(frames)
    assert len(notices) == len(BAD_SNAPSHOTS) + 1
    for i in [*range(1, len(BAD_SNAPSHOTS) + 1), 50]:
        assert sum(str(snapshots / snapshot_name(i)) in text for text in notices) == 1, i
    assert all(text.startswith("skipped a bad snapshot file") for text in notices)
    assert [f.fields["step"] for f in frames if f.kind == "snapshot"] == [99]
    assert "offsets" in " ".join(notices) or "not a safetensors file" in " ".join(notices)
    # each bad file is named once, however often the folder is looked at
    assert notices_of(frames_until(source, lambda fs: False, timeout=0.2)) == []


def test_bad_metric_lines_are_notices_naming_the_line_and_the_good_rows_still_come(tmp_path):
    FolderWriter(tmp_path, MODEL)
    lines = ['{"step": 1, "loss": 1.0}', "not json", "[1, 2]", '{"loss": 3}', '{"step": "4"}',
             "[" * 50 + "]" * 50, '{"step": 2, "loss": "high", "acc": true, "x": 0.5, "lr": null}', ""]
    (tmp_path / METRICS_FILE).write_text("\n".join(lines) + "\n")
    source = FolderSource(tmp_path, poll=0.01)
    frames = frames_until(source, lambda fs: False, timeout=0.3)
    rows = rows_of(frames)
    assert rows[0] == {"step": 1, "loss": 1.0}
    assert rows[1]["step"] == 2 and rows[1]["x"] == 0.5 and math.isnan(rows[1]["lr"]) and len(rows[1]) == 3
    notices = notices_of(frames)
    assert [int(t.split(" line ")[1].split(":")[0]) for t in notices] == [2, 3, 4, 5, 6]
    assert all(str(tmp_path / METRICS_FILE) in t for t in notices)


def test_a_line_too_long_is_skipped_to_its_end_and_the_reading_goes_on(tmp_path, monkeypatch):
    from explorer.core.watch import folder as folder_module

    monkeypatch.setattr(folder_module, "MAX_LINE_BYTES", 100)
    monkeypatch.setattr(folder_module, "READ_CHUNK", 64)
    FolderWriter(tmp_path, MODEL)
    (tmp_path / METRICS_FILE).write_text('{"step": 1}\n{"step": 2, "pad": "' + "x" * 500 + '"}\n{"step": 3}\n')
    source = FolderSource(tmp_path, poll=0.01)
    frames = frames_until(source, lambda fs: len(rows_of(fs)) >= 2, timeout=2.0)
    assert [r["step"] for r in rows_of(frames)] == [1, 3]
    assert any("line 2 is longer than 100 bytes" in t for t in notices_of(frames))


def test_a_metrics_file_that_is_a_fifo_is_a_notice_and_the_snapshots_still_come(tmp_path):
    from safetensors.numpy import save

    write_watch(tmp_path, {"format": FORMAT, "version": 1, "model": MODEL})
    os.mkfifo(tmp_path / METRICS_FILE)
    (tmp_path / SNAPSHOT_DIR).mkdir()
    (tmp_path / SNAPSHOT_DIR / snapshot_name(1)).write_bytes(save(arrays_at(1), metadata={"step": "1"}))
    source = FolderSource(tmp_path, poll=0.01)
    frames = frames_until(source, lambda fs: any(f.kind == "snapshot" for f in fs), timeout=2.0)
    assert any("not a regular file" in t and str(tmp_path / METRICS_FILE) in t for t in notices_of(frames))
    assert [f.fields["step"] for f in frames if f.kind == "snapshot"] == [1]


def test_a_new_run_in_the_folder_is_read_from_its_start(tmp_path):
    writer = FolderWriter(tmp_path, MODEL)
    writer.add_rows([{"step": s, "loss": 1.0} for s in range(1, 50)])
    writer.flush(force=True)
    source = FolderSource(tmp_path, poll=0.01)
    assert len(rows_of(frames_until(source, lambda fs: len(rows_of(fs)) >= 49))) == 49
    writer.close()
    writer = FolderWriter(tmp_path, MODEL)
    writer.add_rows([{"step": 1, "loss": 2.0}])
    writer.flush(force=True)
    frames = frames_until(source, lambda fs: rows_of(fs))
    assert rows_of(frames) == [{"step": 1, "loss": 2.0}]
    assert any("a new run started" in t for t in notices_of(frames))


def test_closing_the_source_ends_it(tmp_path):
    FolderWriter(tmp_path, MODEL)
    source = FolderSource(tmp_path, poll=0.01)
    source.close()
    assert source.next_frame(0.1) is None
    assert source.closed_reason == "the folder was closed here"
