"""Option text a careless or hostile user can write: every fault is one line, at load time.

Each case runs the real command line (``restore options|test|train ...``) and checks the exit
status, that stderr is exactly one ``restore: error:`` line naming the key and the file (or
``--set``) it came from, and that nothing was written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import restore.config.loader as loader
from restore.cli.main import main

ROOT = Path(__file__).resolve().parents[2]

TINY = "name: x\nnetwork: {type: n2n_unet, n_feature: 8}\n"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def fails(capsys, argv: list[str], *fragments: str) -> str:
    """Run ``restore ARGV``; assert exit 2 and one error line holding every fragment."""
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: error: "), captured.err
    assert "Traceback" not in captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def eval_file(tmp_path: Path, section: str, set_name: str) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return write(tmp_path / "o.yml", (
        f"name: run\nnetwork: {{type: n2n_unet, n_feature: 8}}\n"
        f"train: {{total_iter: 1}}\n"
        f"path: {{results_root: {tmp_path}/results, experiments_root: {tmp_path}/exp, pretrained: {tmp_path}/w.pth}}\n"
        f"datasets:\n"
        f"  train: {{type: noisy_folder, root: {data}}}\n"
        f"  {section}:\n"
        f"    {set_name}: {{type: noisy_folder, root: {data}}}\n"
    ))


# ---------------------------------------------------------------- names that become paths
@pytest.mark.parametrize("section,command", [("test", "test"), ("val", "train")])
@pytest.mark.parametrize("set_name,problem", [
    ('"../../escaped"', "without '/'"),
    ('"a/b"', "without '/'"),
    ('".hidden"', "must not start with '.'"),
    ('"a\\tb"', "control characters"),
    ('"  "', "non-empty"),
])
def test_a_set_name_that_is_not_a_plain_name_is_refused_at_load(tmp_path, capsys, section, command, set_name, problem):
    opt = eval_file(tmp_path, section, set_name)
    line = fails(capsys, [command, "-opt", opt], str(opt), f"under 'datasets.{section}'", problem)
    assert "set name" in line
    assert not (tmp_path / "results").exists() and not (tmp_path / "exp").exists()
    assert not (tmp_path / "escaped").exists()


def test_a_bad_set_name_in_a_base_file_blames_the_base_file(tmp_path, capsys):
    write(tmp_path / "base.yml", 'datasets:\n  test:\n    "../up": {type: noisy_folder, root: .}\n')
    child = write(tmp_path / "child.yml", "base: base.yml\n" + TINY)
    line = fails(capsys, ["options", "-opt", child], "base.yml: ", "'../up'")
    assert "child.yml" not in line


def test_a_set_name_given_by_set_is_blamed_on_set(tmp_path, capsys):
    opt = write(tmp_path / "o.yml", TINY)
    fails(capsys, ["options", "-opt", opt, "--set", "datasets.test.ok={type: noisy_folder, root: .}",
                   "--set", "datasets.test.ok.label=..x"], "--set datasets.test.ok.label", "'..x'", "start with '.'")


def test_a_300_character_name_is_one_line_at_load_time(tmp_path, capsys):
    opt = write(tmp_path / "o.yml", TINY.replace("name: x", "name: " + "n" * 300) + f"path: {{experiments_root: {tmp_path}/exp}}\n")
    fails(capsys, ["train", "-opt", opt], "o.yml: key 'name'", "300 bytes long (at most 120)")
    fails(capsys, ["options", "-opt", write(tmp_path / "p.yml", TINY), "--set", "name=" + "n" * 300],
          "--set name: key 'name'", "300 bytes")
    assert not (tmp_path / "exp").exists()


def test_a_name_from_a_base_file_is_blamed_on_that_file(tmp_path, capsys):
    write(tmp_path / "base.yml", "name: ../escape\n")
    child = write(tmp_path / "child.yml", "base: base.yml\nnetwork: {type: n2n_unet}\n")
    fails(capsys, ["options", "-opt", child], "base.yml: key 'name' must be a plain folder name")


def test_a_long_set_name_and_names_differing_only_in_case(tmp_path, capsys):
    opt = write(tmp_path / "o.yml", TINY)
    spec = "{type: noisy_folder, root: .}"
    fails(capsys, ["options", "-opt", opt, "--set", f"datasets.test.{'s' * 200}={spec}"], "200 bytes long")
    fails(capsys, ["options", "-opt", opt, "--set", f"datasets.val.Kodak={spec}", "--set", f"datasets.val.kodak={spec}"],
          "--set datasets.val.kodak", "'Kodak' and 'kodak'", "differ only in case")


def test_a_yaml_boolean_as_set_name_must_be_quoted(tmp_path, capsys):
    opt = write(tmp_path / "o.yml", TINY + "datasets:\n  test:\n    yes: {type: noisy_folder, root: .}\n")
    fails(capsys, ["options", "-opt", opt], "o.yml: ", "True", "must be a string (quote it")


# ---------------------------------------------------------------- text YAML cannot read
@pytest.mark.parametrize("raw,where,char", [
    (b"name: x\x00\n", ":1:8:", "U+0000"),
    (b"name: x\nseed: 1\x01\n", ":2:8:", "U+0001"),
    (b"name: x\nnote: \x1b[31m\n", ":2:7:", "U+001B"),
])
def test_control_characters_in_a_file_are_one_line(tmp_path, capsys, raw, where, char):
    opt = write(tmp_path / "o.yml", raw)
    fails(capsys, ["options", "-opt", opt], f"o.yml{where} invalid YAML", char)


def test_control_characters_in_a_set_value_or_key_are_one_line(tmp_path, capsys):
    opt = write(tmp_path / "o.yml", TINY)
    fails(capsys, ["options", "-opt", opt, "--set", "seed=1\x01"], "--set seed=1\\x01", "U+0001")
    # a newline in the key is shown escaped, so the error stays on one line
    fails(capsys, ["options", "-opt", opt, "--set", "se\ned=1"], "se\\ned", "unknown key")


def test_deep_nesting_in_a_file_is_one_line(tmp_path, capsys):
    opt = write(tmp_path / "o.yml", "name: x\nseed: " + "[" * 700 + "]" * 700 + "\n")
    fails(capsys, ["options", "-opt", opt], "o.yml:2:", "nested more than 64 levels")
    child = write(tmp_path / "c.yml", "base: o.yml\n")
    fails(capsys, ["options", "-opt", child], "o.yml:2:", "nested more than 64 levels")
    block = write(tmp_path / "b.yml", "name: x\n" + "".join(" " * i + f"k{i}:\n" for i in range(700)))
    fails(capsys, ["options", "-opt", block], "b.yml:", "nested more than 64 levels")


def test_deep_nesting_in_set_values_and_keys_is_one_line(tmp_path, capsys):
    opt = write(tmp_path / "o.yml", TINY)
    line = fails(capsys, ["options", "-opt", opt, "--set", "seed=" + "{a: " * 700 + "1" + "}" * 700],
                 "--set seed=", "nested more than 64 levels")
    assert len(line) < 300  # the 2000-character value is shortened
    fails(capsys, ["options", "-opt", opt, "--set", "a." * 900 + "b=1"], "nested more than 64 levels")
    fails(capsys, ["options", "-opt", opt, "--set", "a." * 40 + "b=" + "[" * 40 + "]" * 40], "nested more than 64 levels")


def test_nesting_within_the_limit_still_loads(tmp_path, capsys):
    opt = write(tmp_path / "o.yml", TINY)
    assert main(["options", "-opt", str(opt), "--set", "network.deep=" + "[" * 60 + "]" * 60]) == 2
    line = capsys.readouterr().err
    assert "unknown key 'network.deep'" in line  # parsed fine; refused by the schema only


def test_alias_bombs_and_alias_cycles_are_one_line(tmp_path, capsys):
    lines = ["name: x", "a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    bomb = write(tmp_path / "bomb.yml", "\n".join(lines) + "\n")
    fails(capsys, ["options", "-opt", bomb], "bomb.yml:", "expands to more than")
    for text in ("name: x\nseed: &a [*a]\n", "name: x\nnetwork: &n {type: n2n_unet, x: *n}\n"):
        fails(capsys, ["options", "-opt", write(tmp_path / "cyc.yml", text)], "cyc.yml:2:", "alias refers to the value that contains it")


@pytest.mark.parametrize("text,fragments", [
    ("? [a, b]\n: 1\nname: x\n", ("u.yml:1:3:", "a list or mapping cannot be a key")),
    ("- name: x\n", ("u.yml: the top level", "mapping", "got a list")),
    ("just a string\n", ("u.yml: the top level", "got a str")),
    ("name: x\n---\nname: y\n", ("u.yml:2:1:", "another document")),
    ("name: x\nname: y\n", ("u.yml:2: duplicate key 'name'",)),
    ("name: x\nseed: !!python/object:os.system {}\n", ("u.yml:2:", "invalid YAML")),
    ("name: x\n\tseed: 1\n", ("u.yml:2:", "invalid YAML")),
])
def test_malformed_documents_are_one_line(tmp_path, capsys, text, fragments):
    fails(capsys, ["options", "-opt", write(tmp_path / "u.yml", text)], *fragments)


# ---------------------------------------------------------------- files that cannot be read
def test_option_file_not_utf8(tmp_path, capsys):
    opt = write(tmp_path / "latin1.yml", "name: x\nnote: caf\xe9\n".encode("latin-1"))
    fails(capsys, ["options", "-opt", opt], "latin1.yml:2: not UTF-8 text (byte 0xe9", "save option files as UTF-8")
    fails(capsys, ["options", "-opt", write(tmp_path / "u16.yml", TINY.encode("utf-16"))], "u16.yml:1: not UTF-8")


def test_a_folder_a_pipe_or_nothing_as_option_file(tmp_path, capsys):
    fails(capsys, ["options", "-opt", tmp_path], f"option file '{tmp_path}' is a folder")
    fails(capsys, ["options", "-opt", tmp_path / "nope.yml"], "nope.yml' not found")
    fails(capsys, ["options", "-opt", tmp_path / "nope" / "deeper.yml"], "deeper.yml' not found")
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    fails(capsys, ["options", "-opt", fifo], "fifo.yml' is not a regular file")
    fails(capsys, ["options", "-opt", "/dev/null"], "'/dev/null' is not a regular file")


def test_an_unreadable_option_file(tmp_path, capsys, monkeypatch):
    opt = write(tmp_path / "secret.yml", TINY)
    opt.chmod(0)
    if os.geteuid() == 0:  # root reads anything: inject the permission error instead

        def refuse(path, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(loader, "open", refuse, raising=False)
    fails(capsys, ["options", "-opt", opt], "secret.yml", "cannot read it: permission denied")


def test_a_huge_option_file_is_refused_before_reading(tmp_path, capsys):
    opt = write(tmp_path / "big.yml", "name: x\n" + "# padding\n" * 400_000)
    fails(capsys, ["options", "-opt", opt], "big.yml' is 3.8 MiB", "at most 2 MiB")


@pytest.mark.parametrize("base,fragments", [
    ("missing.yml", ("o.yml: base file", "missing.yml' not found")),
    (".", ("o.yml: base file", "is a folder")),
    ("/dev/zero", ("o.yml: base file '/dev/zero' is not a regular file",)),
    ("''", ("o.yml: key 'base' names an empty file name",)),
    ("[a.yml, 3]", ("o.yml: key 'base' must be a file name or a list",)),
    ("o.yml", ("'base' files form a cycle",)),
])
def test_bad_base_entries_are_one_line(tmp_path, capsys, base, fragments):
    opt = write(tmp_path / "o.yml", f"base: {base}\n" + TINY)
    fails(capsys, ["options", "-opt", opt], *fragments)


def test_a_very_long_base_chain_is_one_line(tmp_path, capsys):
    for i in range(200):
        write(tmp_path / f"b{i}.yml", f"base: b{i + 1}.yml\n" if i < 199 else TINY)
    fails(capsys, ["options", "-opt", tmp_path / "b0.yml"], "'base' files chain more than 32 levels")


# ---------------------------------------------------------------- --set blames --set
def test_an_unknown_nested_key_from_set_names_the_whole_override(tmp_path, capsys):
    write(tmp_path / "base.yml", "train: {total_iter: 5}\n")
    opt = write(tmp_path / "o.yml", "base: base.yml\n" + TINY)
    line = fails(capsys, ["options", "-opt", opt, "--set", "train.nosuch.x=1"],
                 "restore: error: --set train.nosuch.x=1: unknown key 'train.nosuch'")
    assert "base.yml" not in line and "o.yml" not in line
    # also where the file has no 'train' section at all
    fails(capsys, ["options", "-opt", write(tmp_path / "p.yml", TINY), "--set", "train.nosuch.x=1"],
          "--set train.nosuch.x=1: unknown key 'train.nosuch'")


@pytest.mark.parametrize("item", ["seed", "=3", ".=1", "..=1", "a..b=1", " =1", "a. .b=1"])
def test_malformed_set_is_one_line(tmp_path, capsys, item):
    fails(capsys, ["options", "-opt", write(tmp_path / "o.yml", TINY), "--set", item], "expected KEY.PATH=VALUE")


def test_worst_cases_in_a_real_process_print_no_traceback(tmp_path):
    nul = write(tmp_path / "nul.yml", b"name: x\x00\n")
    deep = "seed=" + "[" * 5000
    for args in (["options", "-opt", str(nul)], ["options", "-opt", str(write(tmp_path / "o.yml", TINY)), "--set", deep]):
        proc = subprocess.run([sys.executable, "-m", "restore.cli.main", *args], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_file_name_with_a_newline_is_shown_escaped(tmp_path, capsys):
    opt = write(tmp_path / "two\nlines.yml", "name: ../x\n")
    fails(capsys, ["options", "-opt", opt], "two\\nlines.yml: key 'name'")
    missing = write(tmp_path / "c.yml", "base: \"gone\\nbase.yml\"\n")
    fails(capsys, ["options", "-opt", missing], "gone\\nbase.yml' not found")


def test_a_unicode_set_name_loads_and_prints_as_written(tmp_path, capsys):
    opt = write(tmp_path / "o.yml", TINY + "datasets:\n  test:\n    café_δ: {type: noisy_folder, root: .}\n")
    assert main(["options", "-opt", str(opt)]) == 0
    out = capsys.readouterr().out
    assert "    café_δ: {type: noisy_folder" in out
    again = write(tmp_path / "again.yml", out)
    assert main(["options", "-opt", str(again)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == out.splitlines()[1:]
