"""Fixtures for the judge tests: a live llama_cpp.server, a scriptable fake server, a cache file."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tests.judges.judge_servers import FakeServer, Reply, completion, live_server


@pytest.fixture(scope="session")
def llama_server():
    """Base URL (…/v1) of a live llama_cpp.server shared by the whole judge test session."""
    with live_server() as server:
        yield server.base_url


@pytest.fixture
def cache_file(tmp_path) -> str:
    return str(tmp_path / "verdicts.sqlite")


@pytest.fixture
def fake_server():
    """Start a scriptable OpenAI-compatible server; the test sets ``server.respond``."""
    state = FakeServer(url="", respond=lambda body: Reply(body=completion('{"criteria_met": true}')))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            self._send(Reply(body={"object": "list", "data": [{"id": "fake-judge"}]}))

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with state.lock:
                state.requests.append(body)
                state.headers.append(dict(self.headers))
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                reply = state.respond(body)
                time.sleep(reply.delay_s)
                self._send(reply)
            finally:
                with state.lock:
                    state.in_flight -= 1

        def _send(self, reply: Reply):
            data = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data.encode())))
                self.end_headers()
                self.wfile.write(data.encode())
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test): nothing to answer

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    httpd = Server(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
