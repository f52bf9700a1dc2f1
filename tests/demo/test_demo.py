"""``restore demo`` without a browser: the missing extra, the choices it offers, what a click does.

The session (what one click runs) is exercised directly with a small N2N UNet with random
weights: the result file, the PSNR gain with a synthetic noise, progress, and the refusals
(the pixel limit with the CLI's message, a missing mask, missing weights).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from api_nets import generated_image, rectangle_mask, write_case
from data_helpers import assert_one_line, save_rgb

from restore.cli.main import build_parser, main
from restore.data.image_io import read_image
from restore.demo import choices
from restore.demo.session import DemoSession, add_noise
from restore.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def n2n(tmp_path_factory) -> tuple[Path, Path]:
    return write_case(tmp_path_factory.mktemp("demo_case"), "n2n_unet")


def test_without_gradio_the_command_is_one_line_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now raises ImportError
    assert main(["demo", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["restore: error: restore demo needs the 'gradio' package, which is not installed: "
                   "pip install -e \".[demo]\""]


def test_the_command_binds_loopback_and_cpu_by_default():
    args = build_parser().parse_args(["demo"])
    assert (args.host, args.device, args.tile, args.port) == ("127.0.0.1", "cpu", 512, 7860)


def test_the_package_infer_option_files_are_offered_with_their_noise_and_weights():
    files = choices.infer_option_files()
    assert len(files) == len(list((ROOT / "options").glob("*/infer/*.yml"))) >= 16
    n2n = next(f for f in files if f.endswith("n2n_gauss25.yml"))
    assert choices.task_noise(n2n) == "gauss25" and choices.default_weights(n2n) == "model_gauss25_b4e100r02.pth"
    assert choices.task_noise(next(f for f in files if f.endswith("n2n_gauss5_50.yml"))) == "none"  # a range: no one level
    labnet = next(f for f in files if f.endswith("labnet_istd.yml"))
    assert choices.task_noise(labnet) == "none" and choices.takes_mask(labnet) and not choices.takes_mask(n2n)
    assert choices.task_noise(str(choices.QUICKSTART_OPTIONS)) == "gauss25"


def test_the_quickstart_model_is_found_and_offered_only_when_it_exists(tmp_path):
    from restore.demo.app import starting_point

    assert choices.find_quickstart(tmp_path) is None
    options, weights, note = starting_point(None, None, tmp_path)
    assert "run `restore quickstart`" in note and options in choices.infer_option_files()
    final = tmp_path / "experiments/quickstart_denoise/models/final.pth"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"")
    found = choices.find_quickstart(tmp_path)
    assert found is not None and found.weights == str(final) and found.options.endswith("quickstart/denoise_skimage.yml")
    options, weights, note = starting_point(None, None, tmp_path)
    assert (options, weights) == (found.options, found.weights) and "using the quickstart model" in note
    options, weights, note = starting_point("x.yml", "w.pth", tmp_path)  # given files win
    assert (options, weights, note) == ("x.yml", "w.pth", "")


def test_a_click_writes_the_result_and_reports_progress(n2n, tmp_path):
    options, weights = n2n
    image = save_rgb(tmp_path / "photo.png", generated_image(96, 160))
    session = DemoSession("cpu", tmp_path)
    steps: list[tuple[float, str]] = []
    result = session.restore(str(options), str(weights), 64, "none", str(image), progress=lambda f, t: steps.append((f, t)))
    after = read_image(result.after)
    np.testing.assert_array_equal(read_image(result.before), read_image(image))
    assert after.shape == (96, 160, 3) and not np.array_equal(after, read_image(image))
    model = session.model(str(options), str(weights), 64)
    np.testing.assert_array_equal(after, model(image))  # the file offered for download is the API's result
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    total = model.forwards(96, 160)
    assert total > 1 and any(f"forward {total} of about {total}" in text for _, text in steps)
    assert session.model(str(options), str(weights), 64) is model  # same settings: not loaded again


def test_a_synthetic_noise_shows_the_psnr_gain(n2n, tmp_path):
    options, weights = n2n
    clean = generated_image(64, 96)
    image = save_rgb(tmp_path / "clean.png", clean)
    result = DemoSession("cpu", tmp_path).restore(str(options), str(weights), 0, "gauss25", str(image))
    noisy = read_image(result.before)
    np.testing.assert_array_equal(noisy, add_noise(clean, "gauss25"))
    residual = noisy.astype(float) - clean
    assert 20 < residual.std() < 30  # sigma 25 on the 0..255 scale (clipping shrinks it a little)
    psnr_noisy = 10 * np.log10(255**2 / np.mean(residual**2))
    assert f"PSNR {psnr_noisy:.2f} dB -> " in result.text and "dB (" in result.text


def test_refusals_are_one_line(n2n, tmp_path, monkeypatch, capsys):
    options, weights = n2n
    session = DemoSession("cpu", tmp_path)
    image = save_rgb(tmp_path / "in/photo.png", generated_image(64, 96))
    with pytest.raises(DataError) as excinfo:
        session.restore(str(options), str(weights), 0, "none", None)
    assert_one_line(excinfo, "drop an image first")
    with pytest.raises(ConfigError) as excinfo:
        session.restore(str(options), "", 0, "none", str(image))
    assert_one_line(excinfo, "no weights file given", "restore quickstart")

    monkeypatch.setenv("RESTORE_MAX_PIXELS", "1000")
    with pytest.raises(DataError) as excinfo:
        session.restore(str(options), str(weights), 0, "none", str(image))
    message = assert_one_line(excinfo, "over the limit", "RESTORE_MAX_PIXELS")
    assert main(["infer", "-opt", str(options), "--weights", str(weights), "--input", str(tmp_path / "in"),
                 "--output", str(tmp_path / "out"), "--no-progress"]) == 1
    assert f"restore: failed: {message}" in capsys.readouterr().err  # the CLI's message for the same file


def test_a_shadow_network_asks_for_its_mask(tmp_path):
    options, weights = write_case(tmp_path, "labnet")
    rgb = generated_image(48, 64)
    image = save_rgb(tmp_path / "shadow.png", rgb)
    session = DemoSession("cpu", tmp_path)
    with pytest.raises(ConfigError) as excinfo:
        session.restore(str(options), str(weights), 0, "none", str(image))
    assert_one_line(excinfo, "needs a shadow mask")
    mask = save_rgb(tmp_path / "mask.png", rectangle_mask(48, 64))
    result = session.restore(str(options), str(weights), 0, "none", str(image), str(mask))
    assert read_image(result.after).shape == (48, 64, 3)


def test_the_page_builds(n2n, tmp_path):
    pytest.importorskip("gradio")
    from restore.demo.app import build_app

    options, weights = n2n
    app = build_app(DemoSession("cpu", tmp_path), str(options), str(weights), quickstart_dir=tmp_path)
    ids = {getattr(block, "elem_id", None) for block in app.blocks.values()}
    assert {"option-file", "weights-file", "input-image", "restore-button", "result-slider", "download"} <= ids


def test_a_port_in_use_is_one_line(n2n, capsys):
    pytest.importorskip("gradio")
    import socket

    options, weights = n2n
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "-opt", str(options), "--weights", str(weights), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"restore: error: cannot listen on 127.0.0.1 port {port} (in use, or not an address of this machine): "
                   "give another --port (0: any free one) or --host"]
