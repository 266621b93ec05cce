"""Model zoo downloads against a local HTTP server: verified, cached, resumable, clear when offline."""
import hashlib
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from mmengine.runner import CheckpointLoader, load_checkpoint
from safetensors.torch import save
from timm.models import get_pretrained_cfg
from torch import nn

from petl_vision.engine.safe_load import UnsafeCheckpointError
from petl_vision.zoo import (ZOO, ChecksumMismatchError, IncompleteDownloadError, OfflineError,
                             UnpinnedChecksumWarning, ZooEntry, cache_path, download, get_entry, list_models, resolve,
                             verify)

PAYLOAD = bytes(range(256)) * 2048 + b'end'  # 512 KiB: large enough to cut a transfer in the middle
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class FileServer:
    """Serves ``files`` on 127.0.0.1 and records every request's path and Range header.

    ``truncate_after``: send the full Content-Length but only this many body bytes, then close.
    ``ignore_range``: answer every request with the whole file (200), as some servers do.
    """

    files: dict[str, bytes]
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    truncate_after: int | None = None
    ignore_range: bool = False
    port: int = 0

    def url(self, path: str) -> str:
        return f'http://127.0.0.1:{self.port}{path}'


def make_handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
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
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body[:state.truncate_after])

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def server():
    state = FileServer(files={'/weights.bin': PAYLOAD})
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), make_handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv('PETL_VISION_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv('PETL_VISION_OFFLINE', raising=False)
    return tmp_path / 'cache'


def add_entry(monkeypatch, name: str, url: str, sha256: str | None, filename: str) -> ZooEntry:
    entry = ZooEntry(name, url, sha256, 'mit', 'backbone', 'toy', filename)
    monkeypatch.setitem(ZOO, name, entry)
    return entry


def test_download_verifies_then_serves_from_cache(server, cache):
    url = server.url('/weights.bin')
    path = download(url, sha256=PAYLOAD_SHA256, progress=True)
    assert path.read_bytes() == PAYLOAD
    assert path.parent == cache and not list(cache.glob('*.part'))
    assert download(url, sha256=PAYLOAD_SHA256) == path
    assert server.requests == [('/weights.bin', None)]  # the second call never reached the server


def test_wrong_checksum_raises_and_leaves_nothing(server, cache):
    wrong = '0' * 64
    with pytest.raises(ChecksumMismatchError, match=f'expected {wrong}, got {PAYLOAD_SHA256}'):
        download(server.url('/weights.bin'), sha256=wrong, progress=False)
    assert list(cache.iterdir()) == []


def test_truncated_transfer_keeps_only_the_part_file_then_resumes(server, monkeypatch):
    add_entry(monkeypatch, 'toy.bin', server.url('/weights.bin'), PAYLOAD_SHA256, 'toy.bin')
    server.truncate_after = 100_000
    with pytest.raises(IncompleteDownloadError, match=r'stopped after 100000 of \d+ bytes.*run the same command '
                                                      'again to resume'):
        download('toy.bin', progress=False)
    final = cache_path('toy.bin')
    assert not final.exists()
    assert final.with_name('toy.bin.part').stat().st_size == 100_000

    server.truncate_after = None
    assert download('toy.bin', progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1] == ('/weights.bin', 'bytes=100000-')
    assert not final.with_name('toy.bin.part').exists()


def test_server_ignoring_range_restarts_from_zero(server, monkeypatch):
    add_entry(monkeypatch, 'toy.bin', server.url('/weights.bin'), PAYLOAD_SHA256, 'toy.bin')
    part = cache_path('toy.bin').with_name('toy.bin.part')
    part.parent.mkdir(parents=True)
    part.write_bytes(b'x' * 1000)  # not a prefix of the file: appending to it would fail the checksum
    server.ignore_range = True
    assert download('toy.bin', progress=False).read_bytes() == PAYLOAD
    assert server.requests == [('/weights.bin', 'bytes=1000-')]


def test_part_file_longer_than_the_file_restarts(server, monkeypatch):
    add_entry(monkeypatch, 'toy.bin', server.url('/weights.bin'), PAYLOAD_SHA256, 'toy.bin')
    part = cache_path('toy.bin').with_name('toy.bin.part')
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD + b'extra')
    assert download('toy.bin', progress=False).read_bytes() == PAYLOAD
    assert [r for _, r in server.requests] == [f'bytes={len(PAYLOAD) + 5}-', None]  # 416, then from scratch


def test_unpinned_checksum_reports_the_computed_one(server, monkeypatch):
    add_entry(monkeypatch, 'toy.bin', server.url('/weights.bin'), None, 'toy.bin')
    with pytest.warns(UnpinnedChecksumWarning, match=f'no published checksum; computed sha256 {PAYLOAD_SHA256}, '
                                                     'pin it in the table'):
        path = download('toy.bin', progress=False)
    assert path.read_bytes() == PAYLOAD
    with pytest.warns(UnpinnedChecksumWarning):
        assert verify('toy.bin') == PAYLOAD_SHA256
    assert verify('toy.bin', sha256=PAYLOAD_SHA256) == PAYLOAD_SHA256


def test_verify_catches_a_changed_cached_file(server, monkeypatch):
    add_entry(monkeypatch, 'toy.bin', server.url('/weights.bin'), PAYLOAD_SHA256, 'toy.bin')
    download('toy.bin', progress=False).write_bytes(b'tampered')
    with pytest.raises(ChecksumMismatchError, match=f'expected {PAYLOAD_SHA256}, got'):
        verify('toy.bin')


def test_offline_miss_names_file_url_and_where_to_put_it(server, monkeypatch):
    url = server.url('/weights.bin')
    add_entry(monkeypatch, 'toy.bin', url, PAYLOAD_SHA256, 'toy.bin')
    monkeypatch.setenv('PETL_VISION_OFFLINE', '1')
    with pytest.raises(OfflineError) as error:
        download('toy.bin')
    assert all(s in str(error.value) for s in ('toy.bin', url, str(cache_path('toy.bin'))))
    assert server.requests == []


def test_offline_hit_needs_no_network(server, monkeypatch):
    add_entry(monkeypatch, 'toy.bin', server.url('/weights.bin'), PAYLOAD_SHA256, 'toy.bin')
    path = download('toy.bin', progress=False)
    monkeypatch.setenv('PETL_VISION_OFFLINE', '1')
    assert download('toy.bin') == path


def test_unreachable_server_is_an_offline_error(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on once the socket is closed
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    add_entry(monkeypatch, 'toy.bin', f'http://127.0.0.1:{port}/weights.bin', None, 'toy.bin')
    with pytest.raises(OfflineError, match=f'cannot be reached.*put it at {re.escape(str(cache_path("toy.bin")))}'):
        download('toy.bin', progress=False)


def test_zoo_scheme_loads_through_mmengine(server, monkeypatch):
    source = nn.Linear(3, 2)
    server.files['/model.safetensors'] = data = save(source.state_dict())
    add_entry(monkeypatch, 'toy.linear', server.url('/model.safetensors'), hashlib.sha256(data).hexdigest(),
              'toy.linear.safetensors')
    state = CheckpointLoader.load_checkpoint('zoo://toy.linear', map_location='cpu')
    torch.testing.assert_close(state['weight'], source.weight.detach())
    target = nn.Linear(3, 2)
    load_checkpoint(target, 'zoo://toy.linear')
    torch.testing.assert_close(target.weight, source.weight)
    assert resolve('zoo://toy.linear') == cache_path('toy.linear')
    assert len(server.requests) == 1


def test_zoo_scheme_refuses_pickled_code(server, monkeypatch, tmp_path):
    torch.save({'state_dict': {}, 'hook': threading.Thread}, tmp_path / 'evil.pth')
    data = (tmp_path / 'evil.pth').read_bytes()
    server.files['/evil.pth'] = data
    add_entry(monkeypatch, 'toy.evil', server.url('/evil.pth'), hashlib.sha256(data).hexdigest(), 'toy.evil.pth')
    with pytest.raises(UnsafeCheckpointError, match='refusing to unpickle `threading.Thread`'):
        CheckpointLoader.load_checkpoint('zoo://toy.evil')


def test_unknown_name_lists_close_names():
    with pytest.raises(KeyError, match='closest: vit_base_patch16_224.in21k'):
        get_entry('vit_base_patch16_224_in21k')
    with pytest.raises(ValueError, match='zoo paths look like zoo://'):
        resolve('vit_base_patch16_224.in21k')


def test_table_names_real_timm_hub_weights():
    """Each hub URL is a pretrained tag timm knows, with timm's licence, for the entry's architecture."""
    timm_entries = [ZOO[name] for name in list_models('backbone') if 'huggingface.co/timm/' in ZOO[name].url]
    assert len(timm_entries) >= 6
    for entry in timm_entries:
        hub_id = re.search(r'huggingface\.co/(timm/[^/]+)/resolve/main/model\.safetensors$', entry.url).group(1)
        cfg = get_pretrained_cfg(hub_id.removeprefix('timm/'))
        assert cfg is not None and cfg.hf_hub_id == hub_id, entry.name
        assert cfg.license == entry.license and hub_id.startswith(f'timm/{entry.arch}.'), entry.name
    assert len({e.filename for e in ZOO.values()}) == len(ZOO)  # no two entries share a cache file
