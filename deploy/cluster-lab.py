"""A lab web site for deploy/cluster.sh: answers on 127.0.0.1:PORT, each request after DELAY seconds
(a slow site keeps a scan running long enough to kill its worker mid-scan).

    python3 deploy/cluster-lab.py PORT DELAY
"""
import http.server
import sys
import time

PAGE = b"<!doctype html><html><head><title>lab</title></head><body>lab</body></html>"


class Lab(http.server.BaseHTTPRequestHandler):
    delay = 0.0

    def do_GET(self):
        time.sleep(self.delay)
        found = self.path in ("/", "/index.html")
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(PAGE)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    Lab.delay = float(sys.argv[2])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Lab)
    server.daemon_threads = True
    server.serve_forever()
