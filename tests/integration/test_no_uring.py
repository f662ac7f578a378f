"""test_no_uring.py - without io_uring, ringgate says so and what to change.

A container runtime's seccomp profile or `kernel.io_uring_disabled` makes
io_uring_setup(2) fail with EPERM. The test reproduces that for one process
only: a seccomp filter (installed with prctl from Python's ctypes, in the
child just before exec) that answers EPERM to io_uring_setup and allows
everything else. ringgate must exit 1 with a message naming io_uring, the
sysctl and seccomp, instead of crashing or serving half-way.
"""

import ctypes
import os
import struct
import subprocess
import unittest

import harness as h

NR_IO_URING_SETUP = 425  # the same number on x86_64 and the generic table
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1


def _bpf(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


def deny_io_uring():
    """preexec_fn: seccomp filter returning EPERM for io_uring_setup."""
    prog = b"".join([
        _bpf(0x20, 0, 0, 0),                     # A = seccomp_data.nr
        _bpf(0x15, 0, 1, NR_IO_URING_SETUP),     # if A == nr
        _bpf(0x06, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        _bpf(0x06, 0, 0, SECCOMP_RET_ALLOW),
    ])
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = struct.pack("HxxxxxxQ", len(prog) // 8, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
                  ctypes.addressof(fbuf), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


class NoUring(unittest.TestCase):

    def test_refuses_with_a_message_naming_the_fix(self):
        d = h.temp_dir(self)
        cert, key = h.make_cert(d, "ec", stem="server")
        relays = [{"name": "imaps", "listen": "127.0.0.1:%d" % h.free_port(),
                   "tls": True, "alpn": "imap",
                   "upstream": "127.0.0.1:%d" % h.free_port()}]
        path = os.path.join(d, "ringgate.conf")
        with open(path, "w") as f:
            f.write(h.config_text(h.base_config([(cert, key)], relays,
                                                h.free_port())))
        p = subprocess.run([h.RINGGATE, "-c", path], capture_output=True,
                           text=True, timeout=30, preexec_fn=deny_io_uring)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 1, out)
        self.assertIn("io_uring is not available", out)
        self.assertIn("kernel.io_uring_disabled", out)
        self.assertIn("seccomp", out)
        # the same binary without the filter starts: the filter is the cause
        self.assertEqual(h.run([h.RINGGATE, "-t", "-c", path],
                               check=False).returncode, 0)


if __name__ == "__main__":
    unittest.main()
