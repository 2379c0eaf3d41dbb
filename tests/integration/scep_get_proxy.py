#!/usr/bin/env python3
"""A SCEP server without POST, for test_scep.sh: forwards GET requests to
the real scepserver at UPSTREAM and answers GetCACaps without
POSTPKIOperation and SCEPStandard, so that keyhold must send its PKCSReq
with GET (RFC 8894 §4.1). Refuses POST (405). Logs each operation to LOG.

usage: scep_get_proxy.py PORTFILE UPSTREAM LOG
"""
import http.server
import sys
import urllib.parse
import urllib.request

portfile, upstream, logpath = sys.argv[1], sys.argv[2], sys.argv[3]


class Proxy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        op = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).get("operation", [""])[0]
        with urllib.request.urlopen(upstream + self.path, timeout=10) as r:
            body, ctype = r.read(), r.headers.get("Content-Type", "application/octet-stream")
        if op == "GetCACaps":
            caps = [c for c in body.decode().split() if c not in ("POSTPKIOperation", "SCEPStandard")]
            body = "\n".join(caps).encode()
        with open(logpath, "a") as f:
            f.write("GET %s\n" % op)
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        with open(logpath, "a") as f:
            f.write("POST\n")
        self.send_error(405)

    def log_message(self, *args):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), Proxy)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
__import__("os").rename(portfile + ".tmp", portfile)
srv.serve_forever()
