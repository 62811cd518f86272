"""The bubblewrap sandbox and the limits of backend processes, at the Runner level."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from procs import alive

from wheelstrap.build import sandbox
from wheelstrap.build.backend import (
    BuildSettings,
    Runner,
    _built_wheel,
    default_timeout,
    hidden_dirs,
    tree_bytes,
)
from wheelstrap.build.sandbox import HOME, SandboxPolicy, bwrap_argv, unix_socket_filter
from wheelstrap.errors import BuildFailure, SandboxUnavailable, UserInputError

needs_bwrap = pytest.mark.skipif(sandbox.bubblewrap_problem() is not None,
                                 reason="bubblewrap cannot run here")


def test_argv_mounts_parents_first_and_read_only_last():
    policy = SandboxPolicy(writable=("/o/work/a",), readonly=("/o/work/a/env",),
                           hidden=("/o", "/o/wheels", "/run"), cwd="/o/work/a/src")
    argv = bwrap_argv(policy, "bwrap", seccomp_fd=7)
    assert argv[:8] == ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    assert argv[-1] == "--"
    text = " ".join(argv)
    # /o/wheels is inside /o, already hidden
    assert "/o/wheels" not in text
    order = [text.index(s) for s in ("--tmpfs /o ", "--tmpfs /run", "--tmpfs /tmp",
                                     f"--dir {HOME}", "--bind /o/work/a /o/work/a",
                                     "--ro-bind /o/work/a/env /o/work/a/env")]
    assert order[0] < order[4] < order[5] and order[2] < order[3]
    assert "--unshare-all" in argv and "--share-net" not in argv
    assert "--remount-ro /o " in text and "--remount-ro /tmp" not in text
    assert text.index("--remount-ro /o ") > order[5]
    for flag in ("--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[argv.index("--seccomp") + 1] == "7"
    assert argv[argv.index("--chdir") + 1] == "/o/work/a/src"
    assert "--share-net" in bwrap_argv(SandboxPolicy(writable=(), network=True))
    sized = " ".join(bwrap_argv(SandboxPolicy(writable=(), hidden=("/o",), tmp_size=5000,
                                              scratch=("/var/tmp",))))
    assert "--size 5000 --tmpfs /tmp" in sized and "--size 1048576 --tmpfs /o" in sized
    assert "--size 5000 --tmpfs /var/tmp" in sized and "--remount-ro /var/tmp" not in sized
    with pytest.raises(ValueError, match="absolute"):
        bwrap_argv(SandboxPolicy(writable=("relative",)))


def _run_bpf(program: bytes, arch: int, nr: int, *args: int) -> int:
    """A tiny classic-BPF interpreter over ``struct seccomp_data`` (the instructions the
    filter uses), returning the action."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *args, *[0] * (6 - len(args)))
    code = [struct.unpack("<HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = code[pc]
        if op == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
        elif op == 0x54:
            acc &= k
        elif op == 0x05:
            pc += k
        elif op in (0x15, 0x35):
            hit = acc == k if op == 0x15 else acc >= k
            pc += jt if hit else jf
        elif op == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected instruction {op:#x}")
        pc += 1


@pytest.mark.parametrize("machine, native, compat, nrs", [
    # socket, socketpair, io_uring_setup, an ordinary call (write); compat: + socketcall
    ("x86_64", 0xC000003E, 0x40000003, ((41, 53, 425, 1), (359, 360, 425, 4, 102))),
    ("aarch64", 0xC00000B7, 0x40000028, ((198, 199, 425, 64), (281, 288, 425, 4, None))),
])
def test_the_seccomp_program_refuses_exactly_unix_sockets(machine, native, compat, nrs):
    program = unix_socket_filter(machine)
    assert program is not None and len(program) % 8 == 0
    allow, deny = 0x7FFF0000, 0x00050000 | 13
    for arch, (sock, pair, uring, ordinary, *call) in ((native, nrs[0]), (compat, nrs[1])):
        assert _run_bpf(program, arch, sock, 1, 1) == deny           # AF_UNIX stream
        assert _run_bpf(program, arch, sock, 1, 2) == deny           # AF_UNIX datagram
        assert _run_bpf(program, arch, sock, 2, 1) == allow          # AF_INET
        assert _run_bpf(program, arch, sock, 10, 2) == allow         # AF_INET6
        assert _run_bpf(program, arch, pair, 1, 1) == allow          # stream pair
        assert _run_bpf(program, arch, pair, 1, 1 | 0x80000) == allow  # with CLOEXEC
        assert _run_bpf(program, arch, pair, 1, 2 | 0x80000) == deny   # datagram pair
        assert _run_bpf(program, arch, uring) == deny
        assert _run_bpf(program, arch, ordinary, 1) == allow
        if call and call[0] is not None:
            assert _run_bpf(program, arch, call[0], 1) == deny
    if machine == "x86_64":
        assert _run_bpf(program, native, 0x40000000 + 41, 1) == deny  # the x32 ABI
    assert _run_bpf(program, 0x12345678, 41, 1) == allow  # an ABI it cannot be entered by
    assert unix_socket_filter("sparc64") is None


def test_missing_bubblewrap_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "bwrap_binary", lambda: None)
    sandbox.bubblewrap_problem.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable) as info:
            sandbox.require("bubblewrap")
        assert "bwrap executable was not found" in info.value.message
        assert "apt-get install bubblewrap" in (info.value.hint or "")
        assert "--sandbox none" in (info.value.hint or "")
        sandbox.require("none")
        runner = _runner(tmp_path, BuildSettings(0))
        with pytest.raises(SandboxUnavailable):
            runner.run([sys.executable, "-c", "pass"], isolate=True)
        # uv and other trusted commands do not need it
        runner.run([sys.executable, "-c", "pass"])
    finally:
        monkeypatch.undo()
        sandbox.bubblewrap_problem.cache_clear()


def test_settings_keep_their_positional_form_and_read_the_timeout_default(monkeypatch):
    s = BuildSettings(123, False)
    assert (s.source_date_epoch, s.isolate_network, s.sandbox) == (123, False, "bubblewrap")
    assert s.timeout == 3600
    assert s.content_address() == {"sandbox": "bubblewrap", "isolate_network": False}
    with pytest.raises(SandboxUnavailable, match="Unknown sandbox mode 'docker'"):
        sandbox.require("docker")  # type: ignore[arg-type]
    monkeypatch.setenv("WHEELSTRAP_BUILD_TIMEOUT", "12.5")
    assert default_timeout() == 12.5 and BuildSettings(0).timeout == 12.5
    monkeypatch.setenv("WHEELSTRAP_BUILD_TIMEOUT", "0")
    assert default_timeout() is None
    monkeypatch.setenv("WHEELSTRAP_BUILD_TIMEOUT", "soon")
    with pytest.raises(UserInputError, match="WHEELSTRAP_BUILD_TIMEOUT"):
        default_timeout()


def _runner(tmp_path: Path, settings: BuildSettings) -> Runner:
    work = tmp_path / "out" / "work" / "unit"
    (work / "env").mkdir(parents=True, exist_ok=True)
    return Runner(work / "env", work / "build.log", settings)


def _hook(runner: Runner, code: str, *args: str) -> None:
    runner.run([sys.executable, "-c", code, *args], cwd=str(runner.workdir), isolate=True)


@needs_bwrap
def test_only_the_work_directory_is_writable(tmp_path):
    out = tmp_path / "out"
    (out / "wheels").mkdir(parents=True)
    (out / "wheels" / "a-1.0-py3-none-any.whl").write_bytes(b"wheel")
    runner = _runner(tmp_path, BuildSettings(0, hidden=(out,)))
    work = runner.workdir
    outside = tmp_path / "outside"
    code = r"""
import os, sys
def attempt(path):
    try:
        with open(path, "w") as fh:
            fh.write("x")
        return "wrote"
    except OSError as exc:
        return type(exc).__name__ + ":" + str(exc.errno)
work, out, outside = sys.argv[1:4]
print("work", attempt(os.path.join(work, "ok.txt")))
print("env", attempt(os.path.join(work, "env", "bad.txt")))
print("log", attempt(os.path.join(work, "build.log")))
print("wheels-visible", os.path.exists(os.path.join(out, "wheels")))
print("wheels", attempt(os.path.join(out, "wheels", "planted.whl")))
print("hidden-root", attempt(os.path.join(out, "planted.txt")))
print("outside", attempt(outside))
print("etc", attempt("/etc/wheelstrap-escape"))
print("home", os.environ["HOME"], os.listdir(os.environ["HOME"]))
print("tmp", attempt("/tmp/scratch"))
print("var-tmp", attempt("/var/tmp/scratch"), os.listdir("/var/tmp"))
print("run", os.listdir("/run"))
print("pid", os.getpid() < 10)
"""
    _hook(runner, code, str(work), str(out), str(outside))
    log = runner.log.read_text()
    assert "work wrote" in log
    assert "env OSError:30" in log        # read-only
    assert "log OSError:30" in log
    assert "wheels-visible False" in log  # hidden
    assert "wheels FileNotFoundError:2" in log
    assert "hidden-root OSError:30" in log  # an empty, read-only tmpfs
    # /tmp is private: a write there lands in the sandbox's own tmpfs, not on the host
    assert "etc OSError:30" in log
    assert f"home {HOME} []" in log
    assert "tmp wrote" in log
    assert "var-tmp wrote ['scratch']" in log
    assert not Path("/var/tmp/scratch").exists()
    assert "run []" in log
    assert "pid True" in log
    assert (work / "ok.txt").read_text() == "x"
    assert not (work / "env" / "bad.txt").exists()
    assert not outside.exists() and not Path("/etc/wheelstrap-escape").exists()
    assert [p.name for p in (out / "wheels").iterdir()] == ["a-1.0-py3-none-any.whl"]


@needs_bwrap
def test_no_host_unix_socket_and_no_network(tmp_path):
    runner = _runner(tmp_path, BuildSettings(0))
    token = uuid.uuid4().hex
    # a socket inside the writable directory itself: only the seccomp filter stops it
    inside = runner.workdir / "s"
    servers = []
    for address in (str(inside), f"\0wheelstrap-test-{token}"):
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(address)
        srv.listen()
        srv.setblocking(False)
        servers.append(srv)
    code = r"""
import socket, sys
for address in sys.argv[1:3]:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(address.replace("@", "\0", 1) if address.startswith("@") else address)
        print("CONNECTED", address)
    except OSError as exc:
        print("refused", address, exc.errno)
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    print("network")
except OSError:
    print("no network")
"""
    try:
        _hook(runner, code, str(inside), f"@wheelstrap-test-{token}")
        for srv in servers:
            with pytest.raises(BlockingIOError):
                srv.accept()
    finally:
        for srv in servers:
            srv.close()
    log = runner.log.read_text()
    assert f"refused {inside} 13" in log  # EACCES from the filter
    assert f"refused @wheelstrap-test-{token}" in log
    assert "no network\n" in log and "CONNECTED /" not in log and "CONNECTED @" not in log


@needs_bwrap
def test_a_daemon_dies_with_the_hook(tmp_path):
    runner = _runner(tmp_path, BuildSettings(0))
    token = f"wheelstrap-daemon-{uuid.uuid4().hex}"
    code = r"""
import os, subprocess, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)",
                                  sys.argv[1]])
    os._exit(0)
time.sleep(0.3)
print("daemon started")
"""
    try:
        _hook(runner, code, token)
        assert "daemon started\n" in runner.log.read_text()
        assert alive(token) == []
    finally:
        for pid in alive(token):
            os.kill(pid, 9)


@pytest.mark.parametrize("mode", ["bubblewrap", "none"])
def test_a_hook_past_its_time_limit_is_killed_with_its_children(tmp_path, mode):
    if mode == "bubblewrap" and sandbox.bubblewrap_problem() is not None:
        pytest.skip("bubblewrap cannot run here")
    runner = _runner(tmp_path, BuildSettings(0, sandbox=mode, timeout=1))
    token = f"wheelstrap-hang-{uuid.uuid4().hex}"
    code = ("import subprocess, sys; print('hanging', flush=True); "
            "subprocess.run([sys.executable, '-c', 'import time; time.sleep(600)', "
            "sys.argv[1]])")
    try:
        with pytest.raises(BuildFailure) as info:
            _hook(runner, code, token)
        assert "still running after the time limit of 1 s and was killed" in info.value.message
        assert "hanging\n" in runner.log.read_text()
        assert "time limit of 1 s" in runner.log.read_text()
        assert alive(token) == []
    finally:
        for pid in alive(token):
            os.kill(pid, 9)


@needs_bwrap
def test_the_log_is_capped_and_says_what_was_cut(tmp_path):
    runner = _runner(tmp_path, BuildSettings(0, max_log_bytes=10_000))
    code = ("import sys\nfor i in range(20000): print('line', i)\n"
            "print('the very end')")
    _hook(runner, code)
    log = runner.log.read_text()
    assert len(log) < 10_000 + 64 * 1024 + 500
    assert "the build log is limited to 10000 bytes;" in log
    assert "line 0\n" in log and "the very end" in log  # head and tail are kept
    assert "line 5000\n" not in log


@needs_bwrap
def test_a_build_stopped_by_the_memory_write_limit_says_what_to_do(tmp_path):
    from wheelstrap.build.scratch import MEMORY_NOTE

    runner = _runner(tmp_path, BuildSettings(0, max_write_bytes=1_000_000,
                                             write_note=MEMORY_NOTE))
    with pytest.raises(BuildFailure) as info:
        _hook(runner, "open('big', 'wb').write(b'x' * 3_000_000)")
    assert "more than the limit of 1000000 bytes" in info.value.message
    assert "--work-on-disk" in info.value.message


@needs_bwrap
def test_writing_past_the_write_limit_fails_the_build(tmp_path):
    runner = _runner(tmp_path, BuildSettings(0, max_write_bytes=1_000_000))
    code = "open('big', 'wb').write(b'x' * 3_000_000)"
    with pytest.raises(BuildFailure) as info:
        _hook(runner, code)
    assert "more than the limit of 1000000 bytes" in info.value.message
    assert "more than the limit" in runner.log.read_text()
    # a build that stays under the limit passes
    _hook(runner, "open('small', 'wb').write(b'x' * 1000)")
    # its private /tmp is no larger
    if sandbox.tmpfs_size_supported():
        code = ("import errno\ntry:\n    open('/tmp/big', 'wb').write(b'x' * 3_000_000)\n"
                "except OSError as exc:\n    print('tmp', errno.errorcode[exc.errno])")
        _hook(runner, code)
        assert "tmp ENOSPC" in runner.log.read_text()


@needs_bwrap
def test_a_result_file_replaced_by_a_fifo_is_refused(tmp_path):
    runner = _runner(tmp_path, BuildSettings(0))
    control = tmp_path / "control"
    control.mkdir()
    code = "import os, sys; os.mkfifo(os.path.join(sys.argv[1], 'output.json'))"
    with pytest.raises(BuildFailure, match="other than a regular file"):
        runner.hook_runner([sys.executable, "-c", code, str(control)],
                           cwd=str(runner.workdir))
    os.unlink(control / "output.json")
    with pytest.raises(BuildFailure, match="without reporting a result"):
        runner.hook_runner([sys.executable, "-c", "pass", str(control)],
                           cwd=str(runner.workdir))
    code = "import os, sys; open(os.path.join(sys.argv[1], 'output.json'), 'w').write('{'"
    with pytest.raises(BuildFailure, match="not JSON"):
        runner.hook_runner([sys.executable, "-c", code + ")", str(control)],
                           cwd=str(runner.workdir))
    # the control directory is writable from the sandbox: a well-behaved hook passes
    code = ("import json, os, sys; json.dump({'return_val': 1}, "
            "open(os.path.join(sys.argv[1], 'output.json'), 'w'))")
    runner.hook_runner([sys.executable, "-c", code, str(control)], cwd=str(runner.workdir))


def test_unsandboxed_builds_still_run(tmp_path):
    runner = _runner(tmp_path, BuildSettings(0, sandbox="none"))
    _hook(runner, "print('hello')")
    assert "hello" in runner.log.read_text()
    with pytest.raises(subprocess.CalledProcessError):
        _hook(runner, "raise SystemExit(3)")


def test_the_reported_wheel_must_be_a_regular_file_in_the_output_folder(tmp_path):
    runner = _runner(tmp_path, BuildSettings(0))
    dist = runner.workdir / "dist"
    dist.mkdir()
    good = dist / "a-1.0-py3-none-any.whl"
    good.write_bytes(b"zip")
    assert _built_wheel(dist, good.name, runner) == good
    elsewhere = tmp_path / "out" / "victim-1.0-py3-none-any.whl"
    elsewhere.write_bytes(b"zip")
    (dist / "victim-1.0-py3-none-any.whl").symlink_to(elsewhere)
    os.mkfifo(dist / "fifo-1.0-py3-none-any.whl")
    cases = [
        (None, "not the file name of a wheel"),
        (5, "not the file name of a wheel"),
        ("../victim-1.0-py3-none-any.whl", "not the file name of a wheel"),
        ("/etc/passwd.whl", "not the file name of a wheel"),
        ("a-1.0.tar.gz", "not the file name of a wheel"),
        ("missing-1.0-py3-none-any.whl", "no such wheel was written"),
        ("victim-1.0-py3-none-any.whl", "not a regular file"),
        ("fifo-1.0-py3-none-any.whl", "not a regular file"),
    ]
    for name, why in cases:
        with pytest.raises(BuildFailure, match=why):
            _built_wheel(dist, name, runner)
    # an output folder replaced by a symlink
    moved = tmp_path / "moved"
    dist.rename(moved)
    dist.symlink_to(moved)
    with pytest.raises(BuildFailure, match="replaced its output directory"):
        _built_wheel(dist, good.name, runner)


def test_tree_bytes_counts_hard_links_once_and_skips_excluded(tmp_path):
    (tmp_path / "skip").mkdir()
    (tmp_path / "skip" / "big").write_bytes(b"x" * 10_000)
    (tmp_path / "f").write_bytes(b"x" * 1000)
    os.link(tmp_path / "f", tmp_path / "g")
    (tmp_path / "l").symlink_to("/usr")
    size = tree_bytes([tmp_path], [tmp_path / "skip"])
    assert 1000 <= size < 1000 + 4096 + 100


@needs_bwrap
def test_a_hidden_home_keeps_the_interpreter_visible(tmp_path):
    """Hiding a directory that holds the interpreter's installation (a home directory
    with pyenv or uv pythons) hides everything else in it, not the interpreter."""
    prefix = Path(os.path.realpath(sys.executable)).parent.parent
    secret = tmp_path / "home" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("s3cret")
    hidden = (secret.parent, prefix.parent) if prefix.parent != Path("/") else (secret.parent,)
    runner = _runner(tmp_path / "w", BuildSettings(0, hidden=hidden))
    code = ("import os, sys; print('secret', os.path.exists(sys.argv[1])); "
            "print('siblings', sorted(os.listdir(sys.argv[2])))")
    _hook(runner, code, str(secret), str(prefix.parent))
    log = runner.log.read_text()
    assert "secret False" in log
    if prefix.parent != Path("/"):
        assert f"siblings {[prefix.name]}" in log


def test_hidden_dirs_name_the_output_the_seed_stores_and_the_uv_cache(tmp_path):
    hidden = hidden_dirs(tmp_path / "out", [tmp_path / "seeds"])
    assert hidden[:2] == (tmp_path / "out", tmp_path / "seeds")
    assert hidden[2] == Path(os.environ["UV_CACHE_DIR"])  # set by conftest


@needs_bwrap
def test_the_folders_wheelstrap_fills_cannot_be_swapped_for_symlinks(tmp_path):
    runner = _runner(tmp_path, BuildSettings(0))
    for name in ("src/demo-1.0", "dist"):
        (runner.workdir / name).mkdir(parents=True)
    code = r"""
import os, shutil
for name in ("src", "src/demo-1.0", "dist", "env", "build.log"):
    try:
        os.rename(name, name + ".old")
        os.symlink("/etc", name)
        print(name, "swapped")
    except OSError as exc:
        print(name, "kept", exc.errno)
open("src/demo-1.0/built.o", "w").write("x")  # still writable inside
os.mkdir("new")
"""
    _hook(runner, code)
    log = runner.log.read_text()
    for name in ("src", "src/demo-1.0", "dist", "env", "build.log"):
        assert f"{name} kept 16" in log  # EBUSY: a mount point
        assert not (runner.workdir / name).is_symlink()
    assert (runner.workdir / "src" / "demo-1.0" / "built.o").is_file()
    assert (runner.workdir / "new").is_dir()


def test_a_script_under_the_private_tmp_stays_visible_read_only(tmp_path):
    # wheelstrap (and so pyproject-hooks' in-process script) may be installed under /tmp,
    # which the sandbox replaces with a private tmpfs: the script is bound back read-only
    assert str(tmp_path).startswith("/tmp/")
    script = tmp_path / "site" / "_in_process.py"
    script.parent.mkdir()
    script.write_text("import json, pathlib, sys\nprint('in-process script ran')\n"
                      "pathlib.Path(sys.argv[2], 'output.json').write_text(json.dumps({}))\n")
    (tmp_path / "control").mkdir()
    runner = _runner(tmp_path, BuildSettings(0))
    assert os.path.realpath(script) in runner.policy(str(runner.workdir),
                                                     readonly=(str(script),)).readonly
    runner.hook_runner([sys.executable, str(script), "hook", str(tmp_path / "control")],
                       cwd=str(runner.workdir))
    assert "in-process script ran" in runner.log.read_text()


@pytest.mark.parametrize("mode", ["bubblewrap", "none"])
def test_a_killed_wheelstrap_leaves_no_build_running(tmp_path, mode):
    # SIGKILL leaves wheelstrap no time to stop its builds: the kernel does (setpriv's
    # parent-death signal outside the sandbox, bubblewrap's --die-with-parent inside)
    if mode == "bubblewrap" and sandbox.bubblewrap_problem() is not None:
        pytest.skip("bubblewrap cannot run here")
    import signal
    import time

    token = f"wheelstrap-orphan-{uuid.uuid4().hex}"
    code = r"""
import sys
from pathlib import Path
from wheelstrap.build.backend import BuildSettings, Runner
work = Path(sys.argv[1])
(work / "env").mkdir(parents=True)
runner = Runner(work / "env", work / "build.log", BuildSettings(0, sandbox=sys.argv[2]))
runner.run([sys.executable, "-c", "import time; time.sleep(600)", sys.argv[3]],
           cwd=str(work), isolate=True)
"""
    planner = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "unit"), mode, token])

    def build() -> list[int]:  # the planner's own command line names the token too
        return [pid for pid in alive(token) if pid != planner.pid]

    try:
        for _ in range(300):
            if build():
                break
            time.sleep(0.05)
        assert build(), "the build never started"
        time.sleep(0.3)  # the sandbox's innermost process is the sleeper by now
        planner.send_signal(signal.SIGKILL)
        planner.wait(10)
        for _ in range(100):
            if not build():
                break
            time.sleep(0.05)
        assert build() == []
    finally:
        planner.kill()
        for pid in alive(token):
            os.kill(pid, 9)
