"""test_upstream_login.py - ringgate's back-end login client
(proxy/upstream_login.c) against real back ends, through the test helper
tests/helpers/ul_probe.c (it logs in as ringgate would, prints the result
and the back end's CAPABILITY, then runs a few commands as the user).

Back ends:
- ringstore with a master identity (auth.master_users / master_nets):
  IMAP with STARTTLS (verified certificate) and on a trusted listener
  with ID, POP3 over implicit TLS and plain, submission with XCLIENT (the
  trusted "gate" listener) and with AUTH PLAIN after STARTTLS; refusals
  (the master's password wrong: refused; a certificate for another
  name: temporary, nothing sent).
- Debian's Dovecot (dovecot-imapd, dovecot-pop3d) with a master passdb:
  IMAP with STARTTLS and implicit TLS (its certificate verified; another
  name fails before anything is sent), IMAP with ID (Dovecot logs the client's address from
  x-originating-ip, since loopback is in login_trusted_networks; the
  client's own x-originating-ip is not forwarded) and POP3, plain and
  with a PROXY v2 preamble on a haproxy listener (Dovecot logs the
  client's address), each followed by a command as the user; a wrong
  master password is refused.
"""

import os
import shutil
import subprocess
import time
import unittest

import harness as h
import rs_harness as rs

PROBE = os.path.join(h.BUILD_DIR, "tests", "ul_probe")
USER, PASSWORD = rs.DEMO_USER, rs.DEMO_PASSWORD
MASTER, MASTER_PW = "ringgate-master", "master-secret"
CLIENT = "192.0.2.7:4242"


def probe(testcase, *args, expect=0):
    """Run ul_probe; return its output as a dict of the first lines plus
    'session' (what the back end said after the login)."""
    if not os.path.exists(PROBE):
        if h.IN_CI:
            testcase.fail("ul_probe not built")
        testcase.skipTest("ul_probe not built")
    p = subprocess.run([PROBE] + list(args), capture_output=True,
                       timeout=60)
    out = p.stdout.decode("latin-1")
    testcase.assertEqual(p.returncode, expect,
                         "ul_probe exit %d\n%s\n%s" %
                         (p.returncode, out, p.stderr.decode("latin-1")))
    err = p.stderr.decode("latin-1")
    for mark in h.SANITIZER_MARKS:
        testcase.assertNotIn(mark, err)
    head, _, session = out.partition("\nrest=")
    res = dict(line.split("=", 1) for line in head.splitlines()
               if "=" in line)
    res["result"] = res["result"].split()[0]
    res["why"] = head.split("why=", 1)[1].split()[0]
    res["rest"], _, res["session"] = session.partition("\n")
    res["stderr"] = p.stderr.decode("latin-1")
    return res


class RingstoreBackend(unittest.TestCase):
    """One ringstore with every listener the login client can meet."""

    def setUp(self):
        self.dir = h.temp_dir(self)
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            for user, pw in ((USER, PASSWORD), (MASTER, MASTER_PW)):
                f.write("%s:%s::::::\n" % (user, rs.scram_hash(pw)))
        self.cert, key = h.make_cert(self.dir, "ec", stem="server")
        cfg = rs.store_config(self.dir, h.free_port(), h.free_port(),
                              certs=[(self.cert, key)])
        port = lambda: "127.0.0.1:%d" % h.free_port()
        cfg["imap"] = [
            {"name": "imap", "listen": port(), "starttls": True},
            {"name": "imapt", "listen": port(), "trusted": True,
             "starttls": False},
        ]
        cfg["pop3"] = [
            {"name": "pop3s", "listen": port(), "tls": True},
            {"name": "pop3t", "listen": port(), "trusted": True,
             "starttls": False},
        ]
        cfg["submission"] = [
            {"name": "sub", "listen": port(), "starttls": True},
            {"name": "gate", "listen": port(), "trusted": True,
             "starttls": False},
        ]
        cfg["auth"]["master_users"] = [MASTER]
        cfg["auth"]["master_nets"] = ["127.0.0.0/8"]
        cfg["submit"] = {"hostname": "store.example.test",
                         "local_domains": ["example.test"]}
        self.store = rs.Ringstore(self.dir, cfg).start(self)

    def addr(self, name):
        for group in ("imap", "pop3", "submission"):
            for r in self.store.cfg[group]:
                if r["name"] == name:
                    return r["listen"]
        raise KeyError(name)

    def login(self, proto, listener, *extra, expect=0, user=USER,
              master_pw=MASTER_PW):
        return probe(self, "--proto", proto, "--backend",
                     self.addr(listener), "--user", user, "--master",
                     MASTER, "--pass", master_pw, "--client", CLIENT,
                     "--local", "127.0.0.1:993", *extra, expect=expect)

    def tls(self, mode, sni="localhost"):
        return ["--tls", mode, "--ca", self.cert, "--sni", sni]

    def test_imap_starttls(self):
        r = self.login("imap", "imap", *self.tls("starttls"),
                       "--then", "a SELECT INBOX", "--then", "z LOGOUT")
        self.assertEqual(r["result"], "ok")
        caps = r["capability"].split()
        self.assertIn("IMAP4rev1", caps)
        self.assertNotIn("STARTTLS", caps)  # after login, not before
        self.assertFalse(any(c.startswith("AUTH=") for c in caps), caps)
        self.assertIn("a OK", r["session"])
        self.assertIn("* BYE", r["session"])

    def test_imap_trusted_with_id(self):
        r = self.login("imap", "imapt", "--id", "name=probe", "--id",
                       "x-originating-ip=10.6.6.6", "--then",
                       "a STATUS INBOX (MESSAGES)", "--then", "z LOGOUT")
        self.assertEqual(r["result"], "ok")
        self.assertIn("* STATUS INBOX (MESSAGES 0)", r["session"])

    def test_imap_refusals(self):
        r = self.login("imap", "imapt", master_pw="wrong", expect=2)
        self.assertEqual(r["result"], "refused")
        self.assertNotIn("wrong", r["reason"])
        # the certificate names localhost, not this: nothing is sent
        r = self.login("imap", "imap",
                       *self.tls("starttls", sni="mail.example.test"),
                       expect=1)
        self.assertEqual((r["result"], r["why"]), ("temp", "tls"))
        # implicit TLS to a plaintext listener: a TLS failure, temporary
        r = self.login("imap", "imapt", *self.tls("implicit"), expect=1)
        self.assertEqual(r["result"], "temp")

    def test_pop3(self):
        r = self.login("pop3", "pop3s", *self.tls("implicit"),
                       "--then", "STAT", "--then", "QUIT")
        self.assertEqual(r["result"], "ok")
        self.assertIn("+OK 0 0", r["session"])
        r = self.login("pop3", "pop3t", "--then", "QUIT")
        self.assertEqual(r["result"], "ok")
        r = self.login("pop3", "pop3t", master_pw="wrong", expect=2)
        self.assertEqual(r["result"], "refused")

    def test_submission_xclient(self):
        """XCLIENT: the user is in without a password, and the message's
        Received header names the client (its address and EHLO name),
        not ringgate."""
        r = self.login("smtp", "gate", "--xclient", "--helo",
                       "gate.example.test", "--client-helo",
                       "laptop.example.net", "--then",
                       "MAIL FROM:<%s>" % USER, "--then",
                       "RCPT TO:<%s>" % USER, "--then", "DATA", "--then",
                       "From: %s\r\nTo: %s\r\nSubject: via xclient\r\n"
                       "\r\nhello\r\n." % (USER, USER), "--then", "QUIT")
        self.assertEqual(r["result"], "ok")
        self.assertTrue(r["session"].startswith("250"), r["session"])
        self.assertIn("354", r["session"])
        self.assertIn("221", r["session"])
        new = os.path.join(self.dir, "mail", "example.test", "demo",
                           "Maildir", "new")
        names = h.wait_for(lambda: os.path.isdir(new) and os.listdir(new),
                           what="the message in the INBOX")
        with open(os.path.join(new, names[0]), "rb") as f:
            head = f.read().split(b"\r\n\r\n", 1)[0].decode()
        self.assertIn("from laptop.example.net", head)
        self.assertIn("192.0.2.7", head)
        self.assertNotIn("gate.example.test", head)

    def test_submission_auth(self):
        r = self.login("smtp", "sub", *self.tls("starttls"), "--then",
                       "MAIL FROM:<%s>" % USER, "--then", "QUIT")
        self.assertEqual(r["result"], "ok")
        self.assertTrue(r["session"].startswith("250"), r["session"])
        r = self.login("smtp", "sub", *self.tls("starttls"),
                       master_pw="wrong", expect=2)
        self.assertEqual(r["result"], "refused")
        # STARTTLS required, the trusted listener offers none
        r = self.login("smtp", "gate", *self.tls("starttls"), expect=1)
        self.assertEqual(r["why"], "no_starttls")

    def store_log(self):
        with open(self.store.stderr_path, errors="replace") as f:
            return f.read()


def dovecot_missing():
    if os.geteuid() != 0:
        return "Dovecot needs root here"
    for p in ("/usr/sbin/dovecot", "/usr/lib/dovecot/imap",
              "/usr/lib/dovecot/pop3"):
        if not os.path.exists(p):
            return "%s missing (dovecot-imapd, dovecot-pop3d)" % p
    # the unprivileged owner of the test Maildirs, as bench/bench_lib.sh
    # makes it (Dovecot refuses to serve mail as root)
    if subprocess.run(["id", "rgbench"], capture_output=True).returncode:
        subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s",
                        "/usr/sbin/nologin", "rgbench"], capture_output=True)
        if subprocess.run(["id", "rgbench"], capture_output=True).returncode:
            return "no rgbench user and useradd failed"
    return None


DOVECOT_MISSING = dovecot_missing()


@unittest.skipIf(DOVECOT_MISSING, DOVECOT_MISSING)
class DovecotBackend(unittest.TestCase):
    """Debian's Dovecot with a master passdb, as in an existing site."""

    def setUp(self):
        self.dir = h.temp_dir(self)
        os.chmod(self.dir, 0o755)
        uid = int(subprocess.check_output(["id", "-u", "rgbench"]))
        gid = int(subprocess.check_output(["id", "-g", "rgbench"]))
        self.imap, self.pop3 = h.free_port(), h.free_port()
        self.pop3_proxy, self.imaps = h.free_port(), h.free_port()
        self.cert, self.key = h.make_cert(self.dir, "ec", stem="dovecot")
        home = os.path.join(self.dir, "home")
        os.mkdir(home)
        os.chown(home, uid, gid)  # Dovecot serves mail as rgbench
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write("alice:{PLAIN}alice-pw:%d:%d::%s::\n" % (uid, gid, home))
        with open(os.path.join(self.dir, "masters"), "w") as f:
            f.write("%s:{PLAIN}%s\n" % (MASTER, MASTER_PW))
        for name in ("passwd", "masters"):
            os.chmod(os.path.join(self.dir, name), 0o644)
        self.log = os.path.join(self.dir, "dovecot.log")
        conf = os.path.join(self.dir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(DOVECOT_CONF % {"dir": self.dir, "uid": uid,
                                    "imap": self.imap, "pop3": self.pop3,
                                    "pop3_proxy": self.pop3_proxy,
                                    "imaps": self.imaps, "cert": self.cert,
                                    "key": self.key})
        self.proc = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop)
        self.addCleanup(self.dump_log_on_failure)
        h.wait_for(lambda: port_open(self.imap) and port_open(self.pop3)
                   and port_open(self.pop3_proxy)
                   and port_open(self.imaps),
                   timeout=20, what="dovecot listening")

    def dump_log_on_failure(self):
        if os.environ.get("UL_DUMP_LOG"):
            print(self.dovecot_log())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def login(self, proto, port, *extra, expect=0, master_pw=MASTER_PW):
        return probe(self, "--proto", proto, "--backend",
                     "127.0.0.1:%d" % port, "--user", "alice", "--master",
                     MASTER, "--pass", master_pw, "--client", CLIENT,
                     "--local", "127.0.0.1:143", *extra, expect=expect)

    def dovecot_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def test_imap(self):
        r = self.login("imap", self.imap, "--id", "name=probe", "--id",
                       "x-originating-ip=10.6.6.6", "--sid",
                       "00c0ffee00c0ffee", "--then",
                       "a SELECT INBOX", "--then", "z LOGOUT")
        self.assertEqual(r["result"], "ok")
        caps = r["capability"].split()
        self.assertIn("IMAP4rev1", caps)
        self.assertIn("IDLE", caps)
        self.assertIn("a OK [READ-WRITE]", r["session"])
        # the client's address went through ID, the master is named
        h.wait_for(lambda: "rip=192.0.2.7" in self.dovecot_log(),
                   what="Dovecot's login line with the client address")
        log = self.dovecot_log()
        self.assertNotIn("10.6.6.6", log)  # the client's x- keys dropped
        # ringgate's session id names the session in Dovecot's log too
        self.assertIn("00c0ffee00c0ffee", log)
        self.assertIn("user=<alice>", log)
        self.assertIn("master", log.lower())

    def test_imap_tls(self):
        """STARTTLS and implicit TLS with Dovecot's certificate verified;
        a name it does not carry is a TLS failure before anything is
        sent."""
        tls = ["--ca", self.cert, "--sni", "localhost"]
        r = self.login("imap", self.imap, "--tls", "starttls", *tls,
                       "--then", "a NOOP", "--then", "z LOGOUT")
        self.assertEqual(r["result"], "ok")
        self.assertIn("a OK", r["session"])
        r = self.login("imap", self.imaps, "--tls", "implicit", *tls,
                       "--then", "z LOGOUT")
        self.assertEqual(r["result"], "ok")
        r = self.login("imap", self.imaps, "--tls", "implicit", "--ca",
                       self.cert, "--sni", "imap.example.test", expect=1)
        self.assertEqual((r["result"], r["why"]), ("temp", "tls"))
        h.wait_for(lambda: self.dovecot_log().count("Login: user=<alice>")
                   >= 2, what="two logins in Dovecot's log")
        self.assertIn("TLS", self.dovecot_log())

    def test_imap_refused(self):
        r = self.login("imap", self.imap, master_pw="wrong", expect=2)
        self.assertEqual(r["result"], "refused")

    def test_pop3(self):
        r = self.login("pop3", self.pop3, "--then", "STAT", "--then",
                       "QUIT")
        self.assertEqual(r["result"], "ok")
        self.assertIn("+OK 0 0", r["session"])
        r = self.login("pop3", self.pop3, master_pw="wrong", expect=2)
        self.assertEqual(r["result"], "refused")
        self.assertNotIn("rip=192.0.2.7", self.dovecot_log())

    def test_pop3_proxy_v2(self):
        """POP3 has no ID: the client's address goes in a PROXY v2
        header, which Dovecot takes on a haproxy listener."""
        r = self.login("pop3", self.pop3_proxy, "--proxy-v2", "--then",
                       "QUIT")
        self.assertEqual(r["result"], "ok")
        h.wait_for(lambda: "rip=192.0.2.7" in self.dovecot_log(),
                   what="Dovecot's login line with the client address")


def port_open(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


DOVECOT_CONF = """# Written by tests/integration/test_upstream_login.py; throw-away.
instance_name = ultest-%(imap)d
base_dir = %(dir)s/run
state_dir = %(dir)s/state
log_path = %(dir)s/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <%(cert)s
ssl_key = <%(key)s
disable_plaintext_auth = no
auth_mechanisms = plain login
login_trusted_networks = 127.0.0.0/8
haproxy_trusted_networks = 127.0.0.0/8
auth_verbose = yes
first_valid_uid = %(uid)d
last_valid_uid = %(uid)d
mail_location = maildir:~/Maildir
pop3_uidl_format = %%08Xu%%08Xv
passdb {
  driver = passwd-file
  args = %(dir)s/masters
  master = yes
  pass = yes
}
passdb {
  driver = passwd-file
  args = %(dir)s/passwd
}
userdb {
  driver = passwd-file
  args = %(dir)s/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %(imap)d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %(imaps)d
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %(pop3)d
  }
  inet_listener pop3_haproxy {
    address = 127.0.0.1
    port = %(pop3_proxy)d
    haproxy = yes
  }
  inet_listener pop3s {
    port = 0
  }
}
service submission-login {
  inet_listener submission {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0600
  }
}
"""

if __name__ == "__main__":
    unittest.main()
