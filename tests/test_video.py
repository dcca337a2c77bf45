"""Encoding a recording to GIF and MP4: frames read back, sizes, colours, and atomic writes."""

import os
import sys
import threading

import av
import numpy as np
import pytest
from PIL import Image

from explorer.core.persist import video
from explorer.core.persist.video import EncodeCancelled, VideoError, encode_gif, encode_mp4, encode_video

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (200, 200, 30), (10, 10, 10), (120, 40, 220)]


def solid_frames(h=33, w=47, colours=COLOURS):
    return [np.full((h, w, 3), c, np.uint8) for c in colours]


def leftovers(folder):
    """Everything in ``folder`` (a failed encode must leave nothing, not even a temporary file)."""
    return sorted(p.name for p in folder.iterdir())


def test_gif_round_trip_frames_size_colours_loop(tmp_path):
    calls = []
    out = encode_gif(solid_frames(), tmp_path / "run.gif", fps=8, progress=lambda d, t: calls.append((d, t)))
    assert out == tmp_path / "run.gif"
    assert calls == [(i, len(COLOURS)) for i in range(1, len(COLOURS) + 1)]
    with Image.open(out) as im:
        assert im.n_frames == len(COLOURS)
        assert im.size == (47, 33)
        assert im.info["loop"] == 0  # loops forever
        assert im.info["duration"] == 120  # 1/8 s, in the GIF's hundredths of a second
        for i, colour in enumerate(COLOURS):
            im.seek(i)
            mean = np.asarray(im.convert("RGB"), dtype=float).reshape(-1, 3).mean(0)
            np.testing.assert_allclose(mean, colour, atol=2)
    assert leftovers(tmp_path) == ["run.gif"]


def test_gif_shared_palette_keeps_a_gradient_close(tmp_path):
    ramp = np.linspace(0, 255, 64).astype(np.uint8)
    frame = np.stack([np.tile(ramp, (20, 1)), np.tile(ramp[::-1], (20, 1)), np.full((20, 64), 90, np.uint8)], -1)
    frames = [np.roll(frame, 8 * i, axis=1) for i in range(4)]
    encode_gif(frames, tmp_path / "g.gif", fps=5)
    with Image.open(tmp_path / "g.gif") as im:
        assert im.n_frames == 4
        im.seek(2)
        back = np.asarray(im.convert("RGB"), dtype=float)
    assert np.abs(back - frames[2]).mean() < 3


def test_mp4_round_trip_frames_size_colour(tmp_path):
    calls = []
    out = encode_mp4(solid_frames(), tmp_path / "run.mp4", fps=8, progress=lambda d, t: calls.append(d))
    assert calls == list(range(1, len(COLOURS) + 1))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name in ("h264", "mpeg4")
        assert stream.average_rate == 8
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == len(COLOURS)
    assert all(d.shape == (34, 48, 3) for d in decoded)  # odd sizes padded to even for yuv420p
    for d, colour in zip(decoded, COLOURS):
        np.testing.assert_allclose(d.reshape(-1, 3).mean(0), colour, atol=8)
    assert leftovers(tmp_path) == ["run.mp4"]


def test_encode_video_picks_the_format_by_suffix(tmp_path):
    encode_video(solid_frames(8, 8), tmp_path / "a.GIF", fps=4)
    with Image.open(tmp_path / "a.GIF") as im:
        assert im.format == "GIF"
    with pytest.raises(VideoError, match=r"\.gif or \.mp4"):
        encode_video(solid_frames(8, 8), tmp_path / "a.avi", fps=4)
    assert leftovers(tmp_path) == ["a.GIF"]


@pytest.mark.parametrize("encoder", [encode_gif, encode_mp4])
def test_mixed_sizes_fail_and_leave_the_old_file_untouched(tmp_path, encoder):
    target = tmp_path / "out.bin"
    target.write_bytes(b"previous recording")
    frames = solid_frames() + [np.zeros((34, 47, 3), np.uint8)]
    with pytest.raises(VideoError, match="frame 6 is 47x34, frame 0 is 47x33"):
        encoder(frames, target, fps=8)
    assert target.read_bytes() == b"previous recording"
    assert leftovers(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("encoder,name", [(encode_gif, "x.gif"), (encode_mp4, "x.mp4")])
def test_failure_mid_encode_leaves_no_file_and_no_temp(tmp_path, encoder, name):
    def progress(done, total):
        if done == 3:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        encoder(solid_frames(), tmp_path / name, fps=8, progress=progress)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("encoder,name", [(encode_gif, "x.gif"), (encode_mp4, "x.mp4")])
def test_cancel_by_event_or_callable(tmp_path, encoder, name):
    stop = threading.Event()
    with pytest.raises(EncodeCancelled):
        encoder(solid_frames(), tmp_path / name, fps=8, progress=lambda d, t: stop.set() if d == 2 else None,
                cancel=stop)
    with pytest.raises(EncodeCancelled):
        encoder(solid_frames(), tmp_path / name, fps=8, cancel=lambda: True)
    assert leftovers(tmp_path) == []


def test_bad_frames_and_rates_are_one_line_errors(tmp_path):
    with pytest.raises(VideoError, match="no frames"):
        encode_gif([], tmp_path / "e.gif", fps=8)
    with pytest.raises(VideoError, match=r"frame 0 is not an \(H, W, 3\) uint8"):
        encode_gif([np.zeros((4, 4), np.uint8)], tmp_path / "e.gif", fps=8)
    with pytest.raises(VideoError, match="frame 0 is not"):
        encode_mp4([np.zeros((4, 4, 3), np.float32)], tmp_path / "e.mp4", fps=8)
    with pytest.raises(VideoError, match="frame rate"):
        encode_mp4(solid_frames(), tmp_path / "e.mp4", fps=0)
    assert leftovers(tmp_path) == []


def test_mp4_without_pyav_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    with pytest.raises(VideoError, match="pip install av") as err:
        encode_mp4(solid_frames(), tmp_path / "n.mp4", fps=8)
    assert "\n" not in str(err.value)
    assert leftovers(tmp_path) == []


def test_without_pyav_the_message_names_the_package_and_the_pip_command(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_av(name, *args, **kwargs):  # as if PyAV were not installed at all
        if name == "av" or name.startswith("av."):
            raise ModuleNotFoundError("No module named 'av'", name="av")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "av")
    monkeypatch.setattr(builtins, "__import__", no_av)
    with pytest.raises(VideoError) as err:
        video.require_av()
    assert str(err.value) == ('writing MP4 needs the PyAV package, which is not installed: pip install av '
                              '(or pip install "network-explorer[video]"), or save the recording as .gif')
    with pytest.raises(VideoError, match=r"PyAV package, which is not installed"):
        encode_video(solid_frames(), tmp_path / "n.mp4", fps=8)
    with pytest.raises(VideoError, match=r"PyAV"):
        video.mp4_codec()
    assert leftovers(tmp_path) == []
    assert encode_video(solid_frames(), tmp_path / "g.gif", fps=8) == tmp_path / "g.gif"  # GIF needs no PyAV


def test_mp4_codec_is_h264_or_mpeg4():
    assert video.mp4_codec() in ("libx264", "mpeg4")


def test_mp4_mpeg4_fallback_codec(tmp_path):
    out = encode_mp4(solid_frames(31, 45), tmp_path / "m.mp4", fps=12.5, codec="mpeg4")
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == len(COLOURS) and decoded[0].shape == (32, 46, 3)
    for d, colour in zip(decoded, COLOURS):
        np.testing.assert_allclose(d.reshape(-1, 3).mean(0), colour, atol=10)


def test_new_files_get_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    encode_gif(solid_frames(8, 8), tmp_path / "p.gif", fps=8)
    encode_mp4(solid_frames(8, 8), tmp_path / "p.mp4", fps=8)
    for name in ("p.gif", "p.mp4"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's 0600
