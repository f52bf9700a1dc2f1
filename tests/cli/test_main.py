"""The console script: subcommands, --help, one-line errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from restore.cli.main import COMMANDS, main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "restore.cli.main", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"] if command is None else [command, "--help"])
    assert info.value.code == 0
    assert "usage: restore" in capsys.readouterr().out


def test_archs_lists_and_describes(capsys):
    assert main(["archs"]) == 0
    assert "n2n_unet" in capsys.readouterr().out
    assert main(["archs", "n2n_unet"]) == 0
    assert "1,259,475" in capsys.readouterr().out  # the spec's measured count


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_option_file_is_one_line(tmp_path):
    assert_one_line_error(run_cli("options", "-opt", str(tmp_path / "nope.yml")), "nope.yml", "not found")


def test_unknown_key_is_one_line_with_suggestion(tmp_path):
    f = tmp_path / "o.yml"
    f.write_text("name: x\nnetwork: {type: n2n_unet}\ntrian: {total_iter: 3}\n")
    assert_one_line_error(run_cli("options", "-opt", str(f)), "o.yml", "'trian'", "did you mean 'train'")


def test_wrong_type_is_one_line(tmp_path):
    f = tmp_path / "o.yml"
    f.write_text("name: x\nseed: abc\n")
    assert_one_line_error(run_cli("options", "-opt", str(f)), "o.yml", "'seed' must be int")


def test_unknown_arch_name_is_one_line():
    assert_one_line_error(run_cli("archs", "unet"), "unknown arch 'unet'")


def test_train_script_behaves_like_restore_train(tmp_path):
    f = tmp_path / "o.yml"
    f.write_text("name: x\nnetwork: {type: n2n_unet}\n")
    via_script = subprocess.run([sys.executable, str(ROOT / "train.py"), "-opt", str(f), "--check"],
                                capture_output=True, text=True, cwd=tmp_path)
    via_cli = run_cli("train", "-opt", str(f), "--check")
    assert_one_line_error(via_script, "missing required key 'train'", "restore train")
    assert via_script.stderr == via_cli.stderr


def test_options_prints_resolved_yaml_that_loads_again(tmp_path):
    f = tmp_path / "o.yml"
    f.write_text("name: x\nnetwork: {type: n2n_unet, n_feature: 16}\n")
    proc = run_cli("options", "-opt", str(f), "--set", "seed=3")
    assert proc.returncode == 0, proc.stderr
    resolved = tmp_path / "resolved.yml"
    resolved.write_text(proc.stdout)
    again = run_cli("options", "-opt", str(resolved))
    assert again.returncode == 0 and again.stdout.split("\n", 1)[1] == proc.stdout.split("\n", 1)[1]
    assert "seed: 3" in proc.stdout and "n_feature: 16" in proc.stdout
