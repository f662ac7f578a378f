#!/usr/bin/env python3
"""auth_http.py - a small nginx auth_http responder for the benchmarks
(bench/gate.sh): Python stdlib only.

nginx's mail proxy asks it, for every login, `GET /auth` with Auth-User
and Auth-Pass (URL-escaped) among other headers; for the one bench user
and password it answers Auth-Status: OK with Auth-Server/Auth-Port of the
back end (the ringstore behind nginx), else a refusal with Auth-Wait: 1.
Threaded. It answers HTTP/1.1 and keeps a connection open when the
client asks for it (ringgate's HTTP hook does); nginx sends HTTP/1.0 and
gets one connection per login, as with any auth_http service.

Usage: auth_http.py --listen PORT --backend HOST:PORT --user U --password P
"""

import argparse
import http.server
import sys
import urllib.parse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    a = ap.parse_args()
    host, port = a.backend.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            user = urllib.parse.unquote(self.headers.get("Auth-User", ""))
            pw = urllib.parse.unquote(self.headers.get("Auth-Pass", ""))
            self.send_response(200)
            if user.lower() == a.user.lower() and pw == a.password:
                self.send_header("Auth-Status", "OK")
                self.send_header("Auth-Server", host)
                self.send_header("Auth-Port", port)
            else:
                self.send_header("Auth-Status", "Invalid login or password")
                self.send_header("Auth-Wait", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.listen), Handler)
    srv.daemon_threads = True
    srv.request_queue_size = 256
    print("auth_http listening on 127.0.0.1:%d" % a.listen, file=sys.stderr)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
