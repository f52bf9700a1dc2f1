"""restore.utils.allocator: the CLI keeps freed memory mapped (glibc), with an opt-out and no-ops elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from restore.utils import allocator

# A child process that (maybe) runs the CLI entry point, then mallocs, touches and frees 64 MiB
# three times and prints the minor page faults of the last two rounds. glibc serves 64 MiB with
# mmap by default (its dynamic threshold stops at 32 MiB), so each round faults its pages in
# again, about 16k faults; kept on the heap, the pages stay resident.
CHILD = textwrap.dedent("""
    import ctypes, resource, sys
    import restore
    if sys.argv[1] == "cli":
        from restore.cli.main import main
        assert main(["archs"]) == 0
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, faults = 64 << 20, 0
    for round in range(3):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
        if round:
            faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print("FAULTS", faults)
""")

needs_glibc = pytest.mark.skipif(allocator.glibc() is None, reason="the effect is glibc's; elsewhere it is a no-op (tested below)")


def child_faults(mode: str, **env: str) -> int:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != allocator.OPT_OUT}
    result = subprocess.run([sys.executable, "-c", CHILD, mode], env={**environ, **env},
                            capture_output=True, text=True, timeout=300, check=True)
    [line] = [x for x in result.stdout.splitlines() if x.startswith("FAULTS")]
    return int(line.split()[1])


@needs_glibc
def test_the_cli_entry_keeps_freed_memory_and_importing_restore_does_not():
    imported_only = child_faults("import")
    through_cli = child_faults("cli")
    opted_out = child_faults("cli", RESTORE_NO_MALLOPT="1")
    assert imported_only > 30 and opted_out > 30, (imported_only, opted_out)  # pages faulted in every round
    assert imported_only > 10 * (through_cli + 1) and opted_out > 10 * (through_cli + 1), (imported_only, through_cli, opted_out)


class FakeLibc:
    """Records mallopt calls; ``refuse`` lists parameters it refuses (returns 0)."""

    def __init__(self, refuse: tuple[int, ...] = ()) -> None:
        self.calls: list[tuple[int, int]] = []
        self.refuse = refuse

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 0 if param in self.refuse else 1


@pytest.fixture
def clean_env(monkeypatch):
    for name in (allocator.OPT_OUT, "GLIBC_TUNABLES", *allocator._USER_SETTINGS):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_sets_the_thresholds_on_glibc(clean_env):
    libc = FakeLibc()
    clean_env.setattr(allocator, "glibc", lambda: libc)
    assert allocator.keep_freed_memory() == "on"
    assert libc.calls == [(allocator.M_MMAP_THRESHOLD, 2**31 - 1), (allocator.M_TRIM_THRESHOLD, 2**31 - 1)]


def test_a_glibc_that_caps_the_threshold_gets_mmap_turned_off_instead(clean_env):
    libc = FakeLibc(refuse=(allocator.M_MMAP_THRESHOLD,))
    clean_env.setattr(allocator, "glibc", lambda: libc)
    assert allocator.keep_freed_memory() == "on"
    assert (allocator.M_MMAP_MAX, 0) in libc.calls and libc.calls[-1] == (allocator.M_TRIM_THRESHOLD, 2**31 - 1)


@pytest.mark.parametrize("env", [{"RESTORE_NO_MALLOPT": "1"}, {"MALLOC_TRIM_THRESHOLD_": "1000000"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1000000"}])
def test_opt_out_and_the_users_own_settings_win(clean_env, env):
    libc = FakeLibc()
    clean_env.setattr(allocator, "glibc", lambda: libc)
    for name, value in env.items():
        clean_env.setenv(name, value)
    assert allocator.keep_freed_memory().startswith("off")
    assert libc.calls == []


def test_opt_out_of_zero_means_not_opted_out(clean_env):
    libc = FakeLibc()
    clean_env.setattr(allocator, "glibc", lambda: libc)
    clean_env.setenv(allocator.OPT_OUT, "0")
    assert allocator.keep_freed_memory() == "on" and libc.calls


def test_no_op_where_the_c_library_is_not_glibc(clean_env):
    clean_env.setattr(sys, "platform", "darwin")
    assert allocator.glibc() is None
    assert allocator.keep_freed_memory() == "off (not glibc)"


def test_no_op_on_a_linux_libc_without_glibc_symbols(clean_env):
    """musl: the process's C library has no gnu_get_libc_version."""

    class Musl:
        mallopt = None

        def __getattr__(self, name):
            raise AttributeError(name)

    clean_env.setattr(allocator.ctypes, "CDLL", lambda _name: Musl())
    clean_env.setattr(sys, "platform", "linux")
    assert allocator.glibc() is None
    assert allocator.keep_freed_memory() == "off (not glibc)"
