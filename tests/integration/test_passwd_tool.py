"""test_passwd_tool.py - ringgate-passwd end to end.

Runs the real binary from $RG_BUILD_DIR/auth on files in a temporary
directory. Hashes it writes are checked by code that is not ringgate's:
libcrypt's crypt() and libargon2's argon2id_verify() through ctypes, and
SCRAM keys recomputed with hashlib/hmac. Also: weak passwords refused with
the reason, edits that keep every other byte of the file, the password
never on argv, stdout, stderr or the terminal, concurrent edits that all
land, and generated passwords that meet their policy.
"""

import base64
import ctypes
import ctypes.util
import hashlib
import hmac
import os
import pty
import select
import stat
import subprocess
import tempfile
import time
import unittest

import harness

TOOL = os.path.join(harness.BUILD_DIR, "auth", "ringgate-passwd")
GOOD = "Vq8#mLr2!pWz7e"  # passes length, name and cracklib checks
GOOD2 = "Zk3$hhQp9!wmRt"
DIGITS = set("0123456789")
SYMBOLS = set("!#$%&()*+,-./:;<=>?@[]^_{|}~")
LETTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def load(name, soname):
    path = ctypes.util.find_library(name) or soname
    try:
        return ctypes.CDLL(path)
    except OSError:
        return None


LIBCRYPT = load("crypt", "libcrypt.so.1")
LIBARGON2 = load("argon2", "libargon2.so.1")
if LIBCRYPT is not None:
    LIBCRYPT.crypt.restype = ctypes.c_char_p
    LIBCRYPT.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
if LIBARGON2 is not None:
    LIBARGON2.argon2id_verify.restype = ctypes.c_int
    LIBARGON2.argon2id_verify.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                          ctypes.c_size_t]


def run(args, stdin=b"", timeout=60):
    """Run the tool; stdin is bytes (a pipe) or None (/dev/null)."""
    return subprocess.run([TOOL] + args, input=stdin, capture_output=True,
                          timeout=timeout,
                          stdin=subprocess.DEVNULL if stdin is None else None)


def verifies(stored, password):
    """Check a {SCHEME}data string against password without ringgate."""
    scheme, _, body = stored.partition("}")
    scheme = scheme.lstrip("{")
    pw = password.encode()
    if scheme in ("SHA512-CRYPT", "YESCRYPT", "BLF-CRYPT", "SHA256-CRYPT"):
        return LIBCRYPT.crypt(pw, body.encode()) == body.encode()
    if scheme == "ARGON2ID":
        return LIBARGON2.argon2id_verify(body.encode(), pw, len(pw)) == 0
    if scheme == "SCRAM-SHA-256":
        # RFC 5803: SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>
        head, keys = body[len("SCRAM-SHA-256$"):].split("$")
        iters, salt = head.split(":")
        stored_key, server_key = keys.split(":")
        salted = hashlib.pbkdf2_hmac("sha256", pw, base64.b64decode(salt),
                                     int(iters))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        return (hashlib.sha256(client_key).digest() ==
                base64.b64decode(stored_key) and
                hmac.new(salted, b"Server Key", "sha256").digest() ==
                base64.b64decode(server_key))
    raise AssertionError("unexpected scheme " + scheme)


def user_line(path, user):
    with open(path) as f:
        for line in f:
            if line.split(":", 1)[0] == user:
                return line.rstrip("\n")
    return None


def password_of(path, user):
    rest = user_line(path, user).split(":", 1)[1]
    if rest.startswith("{SCRAM-SHA-256}SCRAM-SHA-256$"):
        return ":".join(rest.split(":")[:3])
    return rest.split(":")[0]


class PasswdTool(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(TOOL):
            self.fail("no %s: build the ringgate-passwd target" % TOOL)
        self.tmp = tempfile.TemporaryDirectory(prefix="rg-passwd-")
        self.addCleanup(self.tmp.cleanup)
        self.path = os.path.join(self.tmp.name, "users")

    def write(self, text, mode=0o640):
        with open(self.path, "w") as f:
            f.write(text)
        os.chmod(self.path, mode)

    def read(self):
        with open(self.path) as f:
            return f.read()

    # ---- hashes verify ----------------------------------------------------

    def test_hash_round_trip_every_scheme(self):
        for scheme in ("SHA512-CRYPT", "YESCRYPT", "BLF-CRYPT",
                       "SCRAM-SHA-256", "ARGON2ID"):
            with self.subTest(scheme=scheme):
                if scheme == "ARGON2ID" and LIBARGON2 is None:
                    if harness.IN_CI:
                        self.fail("libargon2 missing: scripts/deps.sh "
                                  "installs libargon2-dev")
                    self.skipTest("no libargon2 to check against")
                r = run(["hash", "--scheme", scheme],
                        (GOOD + "\n").encode())
                self.assertEqual(r.returncode, 0, r.stderr)
                out = r.stdout.decode().strip()
                self.assertTrue(out.startswith("{%s}" % scheme), out)
                self.assertTrue(verifies(out, GOOD))
                self.assertFalse(verifies(out, GOOD + "x"))
                self.assertNotIn(GOOD.encode(), r.stdout + r.stderr)

    def test_default_scheme_is_argon2id(self):
        r = run(["hash"], GOOD.encode())  # no final newline is fine
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith(b"{ARGON2ID}$argon2id$v=19$"))
        if LIBARGON2 is not None:
            self.assertTrue(verifies(r.stdout.decode().strip(), GOOD))

    def test_add_then_set_verify(self):
        self.write("# users\n")
        r = run(["add", "-f", self.path, "--scheme", "SCRAM-SHA-256",
                 "Bob@Example.org"], (GOOD + "\n").encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(verifies(password_of(self.path, "bob@example.org"),
                                 GOOD))
        r = run(["set", "-f", self.path, "--scheme", "SHA512-CRYPT",
                 "bob@example.org"], (GOOD2 + "\r\n").encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        stored = password_of(self.path, "bob@example.org")
        self.assertTrue(stored.startswith("{SHA512-CRYPT}$6$"))
        self.assertTrue(verifies(stored, GOOD2))

    # ---- weak passwords ------------------------------------------------------

    def refused(self, password, reason, user="bob@example.org", extra=()):
        before = "# keep me\n"
        self.write(before)
        r = run(["add", "-f", self.path] + list(extra) + [user],
                (password + "\n").encode())
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(reason, r.stderr.decode())
        said = (r.stdout + r.stderr).replace(b"password refused", b"")
        self.assertNotIn(password.encode(), said)
        self.assertEqual(self.read(), before)

    def test_weak_passwords_refused_with_reason(self):
        self.refused("password", "shorter than 10 characters")
        self.refused("Sh0rt!x", "shorter than 10 characters")
        self.refused("basketball", "dictionary word")
        self.refused("abcdefghijkl", "simplistic")
        self.refused("aaaaaaaaaaaaaa", "DIFFERENT characters")
        self.refused("xx-Bob-Q9!zzkkw", "contains the user name")
        self.refused("q9!bob@example.orgZ", "contains the user name")
        self.refused(GOOD, "shorter than 20", extra=["--min-length", "20"])

    def test_min_length_counts_characters_not_bytes(self):
        self.write("")
        pw = "\u00e9\u00e8\u00ea\u00eb\u00e0\u00e2Q7#z"  # 10 chars, 16 bytes
        r = run(["add", "-f", self.path, "--min-length", "11",
                 "--scheme", "SHA512-CRYPT", "carol"], pw.encode())
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("shorter than 11", r.stderr.decode())

    def test_missing_dictionary_fails_closed(self):
        self.write("")
        r = run(["add", "-f", self.path, "--dict",
                 os.path.join(self.tmp.name, "nodict"), "carol"],
                (GOOD + "\n").encode())
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn("dictionary", r.stderr.decode())
        self.assertIn("missing", r.stderr.decode())
        self.assertEqual(self.read(), "")

    def test_empty_or_absent_password(self):
        self.write("")
        for stdin in (b"\n", None):
            r = run(["add", "-f", self.path, "carol"], stdin)
            self.assertEqual(r.returncode, 1, r.stderr)
        r = run(["hash"], b"x" * 2000 + b"\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"longer than 1024", r.stderr)

    # ---- file edits ------------------------------------------------------------

    FILE = ("# ringgate users\n"
            "\n"
            "alice:{SHA512-CRYPT}$6$abcdefgh$" + "A" * 86 +
            ":1000:1000::/home/alice::host=10.0.0.5 quota=1G\n"
            "   # indented comment\n"
            "bob:{SCRAM-SHA-256}SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$" +
            base64.b64encode(b"s" * 32).decode() + ":" +
            base64.b64encode(b"k" * 32).decode() + ":::::"
            ":allow_nets=10.0.0.0/8,::1 nologin\n"
            "carol:{BLF-CRYPT}$2b$10$" + "B" * 53 + "\n"
            "# trailing comment without newline")

    def test_set_keeps_everything_else(self):
        self.write(self.FILE, 0o640)
        r = run(["set", "-f", self.path, "--scheme", "YESCRYPT", "BOB"],
                GOOD.encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        new = self.read()
        old_lines, new_lines = self.FILE.split("\n"), new.split("\n")
        self.assertEqual(len(old_lines), len(new_lines))
        for i, (a, b) in enumerate(zip(old_lines, new_lines)):
            if a.startswith("bob:"):
                self.assertTrue(b.startswith("bob:{YESCRYPT}$y$"))
                # the fields after the password, ':' and all, are intact
                self.assertTrue(b.endswith(
                    ":::::" ":allow_nets=10.0.0.0/8,::1 nologin"), b)
                self.assertTrue(verifies(password_of(self.path, "bob"),
                                         GOOD))
            else:
                self.assertEqual(a, b, "line %d changed" % (i + 1))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o640)

    def test_add_and_del_keep_order(self):
        self.write(self.FILE, 0o600)
        r = run(["add", "-f", self.path, "--scheme", "SHA512-CRYPT",
                 "--extra", "host=imap2 quota=2G", "dave"], GOOD.encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        new = self.read()
        # the last line had no newline: it gets one, then the new user
        self.assertTrue(new.startswith(self.FILE + "\ndave:{SHA512-CRYPT}"))
        self.assertTrue(new.endswith("::::::host=imap2 quota=2G\n"))
        r = run(["del", "-f", self.path, "alice"], None)
        self.assertEqual(r.returncode, 0, r.stderr)
        expect = [l for l in self.FILE.split("\n")
                  if not l.startswith("alice:")]
        self.assertEqual(self.read().split("\n")[:len(expect)], expect)
        self.assertIsNone(user_line(self.path, "alice"))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.assertEqual(sorted(os.listdir(self.tmp.name)),
                         ["users", "users.lock"])  # no temp file left

    def test_user_conflicts(self):
        self.write(self.FILE)
        # refused before any password is read: stdin is /dev/null
        r = run(["add", "-f", self.path, "Alice"], None)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(b"exists", r.stderr)
        r = run(["set", "-f", self.path, "nobody"], None)
        self.assertEqual(r.returncode, 3, r.stderr)
        r = run(["del", "-f", self.path, "nobody"], None)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(self.read(), self.FILE)

    def test_add_creates_missing_file_private(self):
        r = run(["add", "-f", self.path, "--scheme", "SHA512-CRYPT",
                 "erin"], GOOD.encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.assertTrue(self.read().startswith("erin:{SHA512-CRYPT}$6$"))

    def test_broken_file_is_left_alone(self):
        broken = "ok:{PLAIN}x\nbroken:{NOSUCH}x\n"
        self.write(broken)
        r = run(["add", "-f", self.path, "--scheme", "SHA512-CRYPT",
                 "frank"], GOOD.encode())
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn(self.path + ":2:", r.stderr.decode())
        self.assertEqual(self.read(), broken)
        self.assertEqual(sorted(os.listdir(self.tmp.name)),
                         ["users", "users.lock"])

    def test_symlink_is_followed(self):
        real = os.path.join(self.tmp.name, "real-users")
        with open(real, "w") as f:
            f.write("# real\n")
        os.symlink("real-users", self.path)
        r = run(["add", "-f", self.path, "--scheme", "SHA512-CRYPT",
                 "gina"], GOOD.encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.islink(self.path))
        self.assertIsNotNone(user_line(real, "gina"))

    def test_concurrent_adds_all_land(self):
        self.write("# start\n")
        procs = []
        for i in range(10):
            p = subprocess.Popen(
                [TOOL, "add", "-f", self.path, "--scheme", "SHA512-CRYPT",
                 "user%d" % i], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            procs.append(p)
        for p in procs:  # released together, so they race for the lock
            p.stdin.write(GOOD.encode())
            p.stdin.close()
        for p in procs:
            p.wait(timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr.read())
            p.stdout.close()
            p.stderr.close()
        text = self.read()
        self.assertTrue(text.startswith("# start\n"))
        for i in range(10):
            self.assertIsNotNone(user_line(self.path, "user%d" % i))
        self.assertEqual(len(text.splitlines()), 11)

    # ---- the password stays secret ----------------------------------------

    def test_password_not_on_argv_and_usage_says_why(self):
        r = run(["hash", GOOD], GOOD.encode())
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"never from the command line", r.stderr)
        self.write("")
        p = subprocess.Popen([TOOL, "add", "-f", self.path, "--scheme",
                              "SHA512-CRYPT", "hank"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            time.sleep(0.2)  # it is now waiting for the password
            with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                cmdline = f.read()
            self.assertIn(b"hank", cmdline)
            self.assertNotIn(GOOD.encode(), cmdline)
            out, err = p.communicate(GOOD.encode() + b"\n", timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err)
        self.assertNotIn(GOOD.encode(), out + err)
        self.assertNotIn(GOOD, self.read())

    def terminal(self, args, answers):
        """Run with a pty as stdin and stderr; answer each prompt.
        Returns (exit code, everything the terminal showed)."""
        master, slave = pty.openpty()
        p = subprocess.Popen([TOOL] + args, stdin=slave, stderr=slave,
                             stdout=subprocess.PIPE, close_fds=True)
        os.close(slave)
        seen = b""
        pending = list(answers)
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:  # EIO: the child closed the tty
                        break
                    if not chunk:
                        break
                    seen += chunk
                while pending and seen.count(b": ") > len(answers) - len(
                        pending):
                    os.write(master, pending.pop(0).encode() + b"\n")
                if p.poll() is not None and not ready:
                    break
            out = p.stdout.read()
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            os.close(master)
        return p.returncode, seen + out

    def test_terminal_prompts_twice_without_echo(self):
        self.write("")
        rc, shown = self.terminal(
            ["add", "-f", self.path, "--scheme", "SHA512-CRYPT", "ivan"],
            [GOOD, GOOD])
        self.assertEqual(rc, 0, shown)
        self.assertIn(b"New password for ivan: ", shown)
        self.assertIn(b"Retype: ", shown)
        self.assertNotIn(GOOD.encode(), shown)
        self.assertTrue(verifies(password_of(self.path, "ivan"), GOOD))

    def test_terminal_mismatch_refused(self):
        self.write("")
        rc, shown = self.terminal(["add", "-f", self.path, "judy"],
                                  [GOOD, GOOD2])
        self.assertEqual(rc, 1, shown)
        self.assertIn(b"differ", shown)
        self.assertNotIn(GOOD.encode(), shown)
        self.assertNotIn(GOOD2.encode(), shown)
        self.assertEqual(self.read(), "")

    def test_add_generate_prints_once(self):
        self.write("")
        r = run(["add", "-f", self.path, "--generate", "--scheme",
                 "SHA512-CRYPT", "--length", "12", "kim"], None)
        self.assertEqual(r.returncode, 0, r.stderr)
        pw = r.stdout.decode()
        self.assertTrue(pw.endswith("\n"))
        pw = pw[:-1]
        self.assertEqual(len(pw), 12)
        self.assertEqual(r.stdout.count(pw.encode()), 1)
        self.assertNotIn(pw.encode(), r.stderr)
        self.assertTrue(verifies(password_of(self.path, "kim"), pw))

    # ---- generate and usage --------------------------------------------------

    def test_generate_policy(self):
        seen, digit_spots = set(), set()
        for _ in range(40):
            r = run(["generate", "--length", "20", "--digits", "3",
                     "--symbols", "4"], None)
            self.assertEqual(r.returncode, 0, r.stderr)
            pw = r.stdout.decode()[:-1]
            self.assertEqual(len(pw), 20)
            self.assertEqual(sum(c in DIGITS for c in pw), 3)
            self.assertEqual(sum(c in SYMBOLS for c in pw), 4)
            self.assertEqual(sum(c in LETTERS for c in pw), 13)
            seen.add(pw)
            digit_spots.update(i for i, c in enumerate(pw) if c in DIGITS)
        self.assertEqual(len(seen), 40)
        # shuffled: digits are not stuck at the front
        self.assertGreater(len(digit_spots), 10)
        r = run(["generate"], None)
        pw = r.stdout.decode()[:-1]
        self.assertEqual((len(pw), sum(c in DIGITS for c in pw),
                          sum(c in SYMBOLS for c in pw)), (16, 2, 2))

    def test_bench_prints_a_row_per_scheme(self):
        # Measures only: the rates are not judged here (docs/benchmarks.md).
        r = run(["bench", "--seconds", "1"], None, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [l for l in r.stdout.decode().splitlines()
                if l.startswith("| ") and not l.startswith("| scheme")]
        self.assertEqual([row.split(" | ")[0][2:] for row in rows],
                         ["ARGON2ID", "BLF-CRYPT", "SHA512-CRYPT",
                          "SHA256-CRYPT", "YESCRYPT", "SCRAM-SHA-256"])

    def test_usage_errors(self):
        cases = [
            [],
            ["frobnicate"],
            ["hash", "--file", "x"],
            ["hash", "--scheme", "MD5"],
            ["hash", "--scheme", "PLAIN"],
            ["add", "carol"],
            ["add", "-f", self.path],
            ["add", "-f", self.path, "a", "b"],
            ["add", "-f", self.path, "#root"],
            ["add", "-f", self.path, "--length", "12", "carol"],
            ["generate", "--length", "8", "--digits", "5", "--symbols", "5"],
            ["generate", "--length", "x"],
            ["generate", "--nope"],
        ]
        for args in cases:
            with self.subTest(args=args):
                r = run(args, None)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.startswith(b"ringgate-passwd: ") or
                                r.stderr.startswith(b"usage:"), r.stderr)
        r = run(["--help"], None)
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"Exit codes:", r.stdout)


if __name__ == "__main__":
    unittest.main()
