"""A real server for tests: the app under waitress (as `grants run` serves it) on a loopback
port in a thread, optionally with the ticker thread `grants run` starts beside it."""
from __future__ import annotations

import threading
from contextlib import contextmanager

import requests

from tests.driver import PASSWORD


@contextmanager
def serve(app, threads: int = 8):
    from waitress import create_server
    server = create_server(app, host="127.0.0.1", port=0, threads=threads, ident="grants-test")
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:  # closing the sockets from this thread can land in the loop's select()
            if not stopping.is_set():
                raise
    thread = threading.Thread(target=run, daemon=True, name="waitress")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stopping.set()
        server.task_dispatcher.shutdown()
        server.close()
        thread.join(5)


def token(base: str, username: str, password: str = PASSWORD) -> str:
    response = requests.post(f"{base}/api/v1/tokens", json={"username": username, "password": password},
                             timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["token"]


def call(base: str, method: str, path: str, bearer: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{base}/api/v1{path}", headers={"Authorization": f"Bearer {bearer}"},
                            timeout=60, **kwargs)
