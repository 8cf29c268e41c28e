"""Base of the loopback HTTP servers the tests run in place of external
services (tests/loopback_whatsapp.py, tests/loopback_fcm.py): a threaded
stdlib server on 127.0.0.1 whose handler reaches its owner as
``self.server.owner``."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackJSONHandler(BaseHTTPRequestHandler):
    """Quiet handler answering JSON."""

    def log_message(self, *args):
        pass

    def _reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LoopbackHTTPServer:
    handler_class = None

    def __init__(self, port=0):
        self.port = port
        self.lock = threading.Lock()
        self._httpd = None
        self._thread = None

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler_class)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def wait(self):
        self._thread.join()

    def stop(self):
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)

    def serve_sandbox(self, port_file, banner):
        """Script mode (the sandboxes of scripts/run): once listening, write
        the port to ``port_file`` (atomically: scripts/run waits for it), then
        serve until interrupted."""
        if port_file:
            with open(port_file + ".tmp", "w", encoding="utf-8") as f:
                f.write(str(self._httpd.server_address[1]))
            os.replace(port_file + ".tmp", port_file)
        # CLI output of the sandbox script (scripts/run reads it), not a log line
        print(banner, flush=True)  # pylint: disable=print-used
        try:
            self.wait()
        except KeyboardInterrupt:
            self.stop()
