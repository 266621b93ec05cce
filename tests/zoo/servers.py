"""HTTP servers on 127.0.0.1 for the zoo tests: a plain file server, and enough of the Hugging Face hub's
``/{repo}/resolve/{revision}/{file}`` API (HEAD and GET, its headers and error codes) for ``hf_hub_download``."""
import contextlib
import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FileServer:
    """Serves ``files`` and records every request's path and Range header.

    ``truncate_after``: send only this many body bytes, then close. ``ignore_range``: answer every request with the
    whole file (200), as some servers do. ``send_length=False``: no Content-Length (a streamed response).
    """

    files: dict[str, bytes]
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    truncate_after: int | None = None
    ignore_range: bool = False
    send_length: bool = True
    port: int = 0

    def url(self, path: str) -> str:
        return f'http://127.0.0.1:{self.port}{path}'


@dataclass
class HubServer:
    """One model repo ``repo`` whose ``main`` is commit ``commit``, holding ``files``; ``older`` holds the files of
    earlier commits, by commit hash. Records ``(method, path)``. ``etags`` overrides the sha256 reported for a file
    (a hub that lies, or a corrupt CDN)."""

    repo: str
    commit: str
    files: dict[str, bytes]
    etags: dict[str, str] = field(default_factory=dict)
    older: dict[str, dict[str, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    port: int = 0

    @property
    def endpoint(self) -> str:
        return f'http://127.0.0.1:{self.port}'


def _file_handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            byte_range = self.headers.get('Range')
            state.requests.append((self.path, byte_range))
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = int(re.fullmatch(r'bytes=(\d+)-', byte_range).group(1)) if byte_range else 0
            if byte_range and not state.ignore_range:
                if start >= len(data):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header('Content-Range', f'bytes {start}-{len(data) - 1}/{len(data)}')
            else:
                start = 0
                self.send_response(200)
            body = data[start:]
            if state.send_length:
                self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body[:state.truncate_after])
            self.close_connection = True

        def log_message(self, *args):
            pass

    return Handler


def _hub_handler(state: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def _answer(self, with_body: bool):
            state.requests.append((self.command, self.path))
            match = re.fullmatch(r'/(.+)/resolve/([^/]+)/(.+)', self.path.split('?')[0])
            if match is None or match.group(1) != state.repo:
                return self._error(404, 'RepoNotFound')
            commit = state.commit if match.group(2) == 'main' else match.group(2)
            files = {state.commit: state.files, **state.older}.get(commit)
            if files is None:
                return self._error(404, 'RevisionNotFound')
            data = files.get(match.group(3))
            if data is None:
                return self._error(404, 'EntryNotFound')
            etag = state.etags.get(match.group(3), hashlib.sha256(data).hexdigest())
            self.send_response(200)
            for name, value in (('X-Repo-Commit', commit), ('X-Linked-Etag', f'"{etag}"'),
                                ('X-Linked-Size', str(len(data))), ('ETag', f'"{etag}"'),
                                ('Content-Length', str(len(data)))):
                self.send_header(name, value)
            self.end_headers()
            if with_body:
                self.wfile.write(data)

        def _error(self, code: int, error_code: str):
            self.send_response(code)
            self.send_header('X-Error-Code', error_code)
            self.send_header('X-Repo-Commit', state.commit)
            self.send_header('Content-Length', '0')
            self.end_headers()

        def do_HEAD(self):
            self._answer(with_body=False)

        def do_GET(self):
            self._answer(with_body=True)

        def log_message(self, *args):
            pass

    return Handler


@contextlib.contextmanager
def serve(state: FileServer | HubServer) -> Iterator[FileServer | HubServer]:
    handler = _hub_handler(state) if isinstance(state, HubServer) else _file_handler(state)
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
