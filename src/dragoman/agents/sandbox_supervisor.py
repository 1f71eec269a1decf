"""The program that keeps a thread's sandbox warm: it runs inside bubblewrap (as the
sandbox's root, with only the capabilities listed in ``sandbox.SUPERVISOR_CAPS``) and
starts each command the server asks for, so a tool call pays a few ``fork``s instead of
a new bubblewrap with its namespaces and mounts.

It is run by the system's Python as ``python3 -I -S -c <this file's source> FD`` and
imports only the standard library. ``FD`` is a ``SOCK_SEQPACKET`` socket to the server
(``warm_sandbox.WarmSandbox``); the supervisor answers ``ready`` once, then reads one
request per message: a JSON object ``{argv, env, cwd, uid, rlimits}`` with two
descriptors attached — where the command's stdout and stderr go, and a stream socket
for its fate. When the command ends the supervisor writes its exit code (``128 + N``
when killed by signal ``N``, as a shell says it) to that socket and closes it; when the
server writes to it or closes it (timeout, cancelled request), the command is killed.

Each command runs as the init's child of a PID namespace of its own (``unshare`` with
``CLONE_NEWPID``; ``setns`` back to the supervisor's own namespace first, or the second
``unshare`` is refused): when it ends — or is killed — the kernel kills everything it left
behind, whatever session or process group it moved to. The init (a fork of the
supervisor) drops to the workspace's uid — bounding set emptied, groups cleared,
``setresuid``/``setresgid``, capabilities cleared, ``no_new_privs`` — sets the resource
limits, and spawns the command. (A command cannot signal its init: PID 1 ignores signals
from its own namespace; nor trace it: a process that changed its uid is not dumpable.)

When the server's end of ``FD`` closes (the server stopped, or stopped the sandbox) the
supervisor kills every command and exits; bubblewrap's init follows, and the sandbox's
namespaces go with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import resource
import select
import signal
import socket
import sys

CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
CAP_VERSION_3 = 0x20080522

libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _drop_privileges(uid: int) -> None:
    """Become ``uid`` with no capabilities and no way to gain any."""
    for cap in range(64):  # EINVAL past the last capability the kernel knows
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    data = (_CapData * 2)()  # all zero: clears the inheritable set too
    _check(libc.capset(ctypes.byref(_CapHeader(CAP_VERSION_3, 0)), data), "capset")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _init(req: dict[str, object], out: int) -> None:
    """PID 1 of the command's namespace (never returns): become the workspace's uid under
    its limits, start the command (``posix_spawn``: no second copy of this process), reap
    orphans, and exit with the command's status — which kills the rest of the namespace."""
    try:
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.closerange(3, 1 << 16)
        uid, limits = req["uid"], req["rlimits"]
        cwd, argv, env = req["cwd"], req["argv"], req["env"]
        assert isinstance(uid, int) and isinstance(limits, dict) and isinstance(cwd, str)
        assert isinstance(argv, list) and isinstance(env, dict)
        _drop_privileges(uid)
        # (after the uid change, which clears it) the supervisor gone: so is the command
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        for name, (soft, hard) in limits.items():
            resource.setrlimit(getattr(resource, name), (soft, hard))
        os.chdir(cwd)
        # Python ignores these; a shell's commands expect the default.
        command = os.posix_spawn(argv[0], argv, env, setsid=True, setsigdef=(
            signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT))
        while True:
            pid, status = os.wait()
            if pid == command:
                code = os.waitstatus_to_exitcode(status)
                os._exit(128 - code if code < 0 else code)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.write(2, f"sandbox: cannot start the command: {e}\n".encode())
    os._exit(127)


class Supervisor:
    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.poll = select.poll()
        self.poll.register(control, select.POLLIN)
        self.by_pidfd: dict[int, tuple[int, socket.socket]] = {}
        self.by_fate: dict[int, int] = {}  # fate socket's fd → the init's pidfd

    def start(self, req: dict[str, object], out: int, fate: socket.socket) -> None:
        try:
            _check(libc.setns(self.own_pidns, CLONE_NEWPID), "setns")
            _check(libc.unshare(CLONE_NEWPID), "unshare")
            pid = os.fork()
        except OSError as e:
            os.write(out, f"sandbox: cannot start the command: {e}\n".encode())
            os.close(out)
            self._report(fate, 127)
            return
        if pid == 0:
            _init(req, out)
        os.close(out)
        pidfd = os.pidfd_open(pid)
        self.by_pidfd[pidfd] = (pid, fate)
        self.by_fate[fate.fileno()] = pidfd
        self.poll.register(pidfd, select.POLLIN)
        self.poll.register(fate, select.POLLIN)

    @staticmethod
    def _report(fate: socket.socket, code: int) -> None:
        with contextlib.suppress(OSError):  # the server gave up on it
            fate.send(b"%d\n" % code)
        fate.close()

    def ended(self, pidfd: int) -> None:
        pid, fate = self.by_pidfd.pop(pidfd)
        self.poll.unregister(pidfd)
        if self.by_fate.pop(fate.fileno(), None) is not None:
            self.poll.unregister(fate)
        _, status = os.waitpid(pid, 0)
        os.close(pidfd)
        code = os.waitstatus_to_exitcode(status)
        self._report(fate, 128 - code if code < 0 else code)

    def kill(self, fate_fd: int) -> None:
        pidfd = self.by_fate.pop(fate_fd, None)
        if pidfd is not None:
            self.poll.unregister(fate_fd)  # the pidfd reports the end
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)

    def request(self) -> bool:
        """Read one request; False when the server is gone."""
        msg, fds, _, _ = socket.recv_fds(self.control, 1 << 20, 2)
        if not msg:
            return False
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return True
        out, fate = fds
        self.start(json.loads(msg), out, socket.socket(fileno=fate))
        return True

    def serve(self) -> None:
        self.control.send(b"ready")
        while True:
            for fd, _ in self.poll.poll():
                if fd == self.control.fileno():
                    if not self.request():
                        return
                elif fd in self.by_pidfd:
                    self.ended(fd)
                else:
                    self.kill(fd)

    def stop(self) -> None:
        for pidfd in list(self.by_pidfd):
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)


def main() -> None:
    # Each command starts with a fork of this process: keep the collector from touching
    # (and so copying) every object in the child.
    gc.disable()
    gc.freeze()
    control = socket.socket(fileno=int(sys.argv[1]))
    supervisor = Supervisor(control)
    try:
        supervisor.serve()
    finally:
        supervisor.stop()


if __name__ == "__main__":
    main()
