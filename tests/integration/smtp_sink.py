"""smtp_sink.py - a tiny SMTP server for tests: the smarthost ringstore's
relay hands mail to. Python stdlib only (socket, ssl, threading).

It speaks just enough ESMTP: greeting, EHLO/HELO, STARTTLS (when given a
certificate), MAIL, RCPT, DATA (dot-unstuffed), RSET, NOOP, QUIT. Each
accepted message is written to the sink's directory as <n>.eml (the bytes
as received, unstuffed) and <n>.json (mail_from, rcpts, tls, helo).

Knobs, settable while it runs:
  answers     {address: "550 5.1.1 no such user"}: RCPT TO of that
              address gets the reply (any 4xx/5xx line)
  data_answer a reply for the end of data instead of 250
  require_tls MAIL before STARTTLS gets 530 5.7.0
  offer_tls   advertise STARTTLS (default: when a certificate is given)
  auth        (user, password): AUTH PLAIN is offered and required
              before MAIL (530 5.7.0), 535 5.7.8 for other credentials
  mute        accept connections and never answer (a hung smarthost)
  hold        a threading.Event: after 354, wait for it before reading
              the message (holding is set meanwhile)
  down()/up() close the listening socket (connections are refused) and
              bind it again on the same port

In a test:   sink = SmtpSink(dir, cert=c, key=k).start(); ...; sink.stop()
From a shell (for swaks-driven tests or by hand):
  python3 smtp_sink.py --port 2525 --dir /tmp/sink [--cert C --key K]
"""

import argparse
import base64
import json
import os
import socket
import ssl
import threading
import time


class SmtpSink:
    def __init__(self, directory, port=0, cert=None, key=None,
                 host="127.0.0.1", name="sink.test"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.host = host
        self.port = port
        self.name = name
        self.ctx = None
        if cert:
            self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ctx.load_cert_chain(cert, key)
        self.answers = {}
        self.data_answer = None
        self.require_tls = False
        self.offer_tls = cert is not None
        self.auth = None
        self.mute = False
        self.hold = None
        self.holding = False
        self.lock = threading.Lock()
        self.count = 0
        self.connections = 0
        self.sock = None
        self.thread = None
        self.running = False

    # -- life cycle
    def start(self):
        self.up()
        return self

    def up(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(16)
        self.port = s.getsockname()[1]
        self.sock = s
        self.running = True
        self.thread = threading.Thread(target=self._accept, args=(s,),
                                       daemon=True)
        self.thread.start()

    def down(self):
        """Stop listening: new connections are refused."""
        self.running = False
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        if self.thread is not None:
            self.thread.join(5)
            self.thread = None

    stop = down

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what arrived
    def messages(self):
        """[(envelope dict, message bytes)] in arrival order."""
        out = []
        names = sorted((int(n[:-5]) for n in os.listdir(self.dir)
                        if n.endswith(".json")))
        for n in names:
            with open(os.path.join(self.dir, "%d.json" % n)) as f:
                env = json.load(f)
            with open(os.path.join(self.dir, "%d.eml" % n), "rb") as f:
                out.append((env, f.read()))
        return out

    # -- serving
    def _accept(self, s):
        while self.running:
            try:
                c, _ = s.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def _save(self, env, data):
        with self.lock:
            self.count += 1
            n = self.count
        with open(os.path.join(self.dir, "%d.eml" % n), "wb") as f:
            f.write(data)
        tmp = os.path.join(self.dir, "%d.json.tmp" % n)
        with open(tmp, "w") as f:
            json.dump(env, f)
        os.rename(tmp, os.path.join(self.dir, "%d.json" % n))

    def _serve(self, conn):
        conn.settimeout(30)
        f = conn.makefile("rb")
        tls = False
        authed = None
        helo = None
        mail_from = None
        mail_params = []
        rcpts = []

        def send(line):
            conn.sendall(line.encode() + b"\r\n")

        try:
            if self.mute:
                while f.readline(4096):
                    pass
                return
            send("220 %s ESMTP smtp_sink" % self.name)
            while True:
                line = f.readline(4096)
                if not line:
                    return
                cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
                verb = cmd.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    helo = cmd[5:].strip()
                    if verb == "HELO":
                        send("250 %s" % self.name)
                        continue
                    ext = ["PIPELINING", "8BITMIME", "SIZE 52428800"]
                    if self.offer_tls and self.ctx and not tls:
                        ext.append("STARTTLS")
                    if self.auth:
                        ext.append("AUTH LOGIN PLAIN")
                    lines = [self.name] + ext
                    for x in lines[:-1]:
                        send("250-" + x)
                    send("250 " + lines[-1])
                elif verb == "STARTTLS":
                    if not self.ctx or tls:
                        send("454 4.7.0 TLS not available")
                        continue
                    send("220 2.0.0 go ahead")
                    f.close()
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                    f = conn.makefile("rb")
                    tls = True
                    helo = None
                    mail_from = None
                    rcpts = []
                elif verb == "AUTH":
                    authed = self._auth(cmd)
                    send("235 2.7.0 ok" if authed else
                         "535 5.7.8 authentication credentials invalid")
                elif verb == "MAIL":
                    if self.require_tls and not tls:
                        send("530 5.7.0 Must issue a STARTTLS command first")
                        continue
                    if self.auth and not authed:
                        send("530 5.7.0 Authentication required")
                        continue
                    mail_from = _path(cmd[5:])
                    mail_params = cmd[5:].split(">", 1)[-1].split()
                    rcpts = []
                    send("250 2.1.0 ok")
                elif verb == "RCPT":
                    if mail_from is None:
                        send("503 5.5.1 MAIL first")
                        continue
                    addr = _path(cmd[3:])
                    answer = self.answers.get(addr)
                    if answer:
                        send(answer)
                    else:
                        rcpts.append(addr)
                        send("250 2.1.5 ok")
                elif verb == "DATA":
                    if not rcpts:
                        send("503 5.5.1 no valid recipients")
                        continue
                    send("354 go ahead")
                    hold = self.hold
                    if hold is not None:
                        self.holding = True
                        hold.wait(30)
                    data = _read_data(f)
                    if data is None:
                        return
                    if self.data_answer:
                        send(self.data_answer)
                    else:
                        self._save({"mail_from": mail_from, "rcpts": rcpts,
                                    "tls": tls, "helo": helo,
                                    "auth": authed,
                                    "mail_params": mail_params}, data)
                        send("250 2.0.0 queued as %d" % self.count)
                    mail_from = None
                    rcpts = []
                elif verb == "RSET":
                    mail_from = None
                    rcpts = []
                    send("250 2.0.0 ok")
                elif verb == "NOOP":
                    send("250 2.0.0 ok")
                elif verb == "QUIT":
                    send("221 2.0.0 bye")
                    return
                else:
                    send("502 5.5.2 command not recognized")
        except (OSError, ssl.SSLError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass


    def _auth(self, cmd):
        """AUTH PLAIN with an initial response: the user, or None."""
        words = cmd.split()
        if not self.auth or len(words) != 3 or words[1].upper() != "PLAIN":
            return None
        try:
            raw = base64.b64decode(words[2], validate=True)
        except ValueError:
            return None
        parts = raw.split(b"\0")
        if len(parts) == 3 and (parts[1].decode(), parts[2].decode()) == \
                tuple(self.auth):
            return parts[1].decode()
        return None


def _path(arg):
    """'FROM:<a@b> SIZE=1' -> 'a@b'."""
    arg = arg.split(":", 1)[1] if ":" in arg else arg
    arg = arg.strip()
    if arg.startswith("<"):
        arg = arg[1:arg.index(">")] if ">" in arg else arg[1:]
    return arg.split(" ", 1)[0]


def _read_data(f):
    """The message after 354, unstuffed, up to CRLF.CRLF; None on EOF."""
    out = []
    while True:
        line = f.readline(1 << 20)
        if not line:
            return None
        if line in (b".\r\n", b".\n"):
            return b"".join(out)
        if line.startswith(b"."):
            line = line[1:]
        out.append(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--answer", action="append", default=[],
                    help="ADDR=REPLY, e.g. 'x@y=550 5.1.1 no'")
    args = ap.parse_args()
    sink = SmtpSink(args.dir, args.port, args.cert, args.key)
    for a in args.answer:
        addr, reply = a.split("=", 1)
        sink.answers[addr] = reply
    sink.start()
    print("smtp_sink listening on %s:%d" % (sink.host, sink.port),
          flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sink.stop()


if __name__ == "__main__":
    main()
