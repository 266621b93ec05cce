"""Model zoo downloads against a local HTTP server: verified, cached, resumable, clear when offline."""
import hashlib
import io
import re
import socket
import threading
import zipfile

import pytest
import torch
from mmengine.runner import CheckpointLoader, load_checkpoint
from safetensors.torch import save
from timm.models import get_pretrained_cfg
from torch import nn

from petl_vision.cli import run_main
from petl_vision.engine.safe_load import UnsafeCheckpointError
from petl_vision.zoo import (ZOO, ChecksumMismatchError, IncompleteDownloadError, OfflineError,
                             UnpinnedChecksumWarning, ZooDownloadError, ZooEntry, cache_path, download, get_entry,
                             list_models, resolve, verify)
from tests.conftest import load_tool
from tests.zoo.servers import FileServer, serve

def zip_bytes(payload: bytes) -> bytes:
    """``payload`` stored in a zip archive: the format torch.save writes, whose completeness the zoo checks."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_STORED) as archive:
        archive.writestr('archive/data.bin', payload)
    return buffer.getvalue()


PAYLOAD = zip_bytes(bytes(range(256)) * 2048 + b'end')  # 512 KiB: large enough to cut a transfer in the middle
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    with serve(FileServer(files={'/weights.bin': PAYLOAD})) as state:
        yield state


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
    """Each hub entry is a pretrained tag timm knows, with timm's licence, for the entry's architecture."""
    hub_entries = [ZOO[name] for name in list_models('backbone') if ZOO[name].hub_repo is not None]
    assert len(hub_entries) >= 6
    for entry in hub_entries:
        cfg = get_pretrained_cfg(entry.hub_repo.removeprefix('timm/'))
        assert cfg is not None and cfg.hf_hub_id == entry.hub_repo, entry.name
        assert cfg.license == entry.license and entry.hub_repo.startswith(f'timm/{entry.arch}.'), entry.name
        assert entry.url.endswith(f'/{entry.hub_repo}/resolve/{entry.revision or "main"}/model.safetensors')
    assert len({e.filename for e in ZOO.values()}) == len(ZOO)  # no two entries share a cache file
    vit_b = ZOO['vit_base_patch16_224.in21k']  # pinned from the hub's page (table.py cites it)
    assert vit_b.sha256 == '1cf14745201dfaffba38831c7cc1003c51618569d0a5dd31a895fe604c427253'
    assert vit_b.revision == '677f7d814cf0d89b7e65b1ea49277ed508a62363'


# --- issue 12 item 7: nothing truncated is cached, digests are checked on every hit and compare in any case ---

def test_unpinned_truncated_stream_is_not_cached(server, monkeypatch):
    """No Content-Length and the connection closes early: the old code cached the cut file with a warning."""
    add_entry(monkeypatch, 'toy.bin', server.url('/weights.bin'), None, 'toy.bin')
    server.send_length, server.truncate_after = False, 300_000
    with pytest.raises(IncompleteDownloadError, match='not a complete zip archive .*central directory.*run the same '
                                                      'command again to resume'):
        download('toy.bin', progress=False)
    assert not cache_path('toy.bin').exists()
    assert cache_path('toy.bin').with_name('toy.bin.part').stat().st_size == 300_000
    server.truncate_after = None  # the next call resumes and completes it
    with pytest.warns(UnpinnedChecksumWarning, match=PAYLOAD_SHA256):
        assert download('toy.bin', progress=False).read_bytes() == PAYLOAD
    assert server.requests[-1] == ('/weights.bin', 'bytes=300000-')


def test_unpinned_file_that_is_no_archive_is_refused(server, monkeypatch, cache):
    server.files['/page.pth'] = b'<html>Sign in to download</html>'
    add_entry(monkeypatch, 'toy.page', server.url('/page.pth'), None, 'toy.page.pth')
    with pytest.raises(ZooDownloadError, match=r"neither a zip .* starts with b'<html>Sign in to'\).*was not cached"):
        download('toy.page', progress=False)
    assert list(cache.iterdir()) == []


def test_unpinned_cut_safetensors_is_not_cached(server, monkeypatch):
    data = save({'w': torch.arange(1000.0)})
    server.files['/cut.safetensors'] = data[:-100]  # what a proxy that drops the tail sends, Content-Length and all
    add_entry(monkeypatch, 'toy.cut', server.url('/cut.safetensors'), None, 'toy.cut.safetensors')
    with pytest.raises(IncompleteDownloadError, match=f'header describes {len(data)} bytes but the file has '
                                                      f'{len(data) - 100}'):
        download('toy.cut', progress=False)
    assert not cache_path('toy.cut').exists()


def test_cut_file_left_in_the_cache_by_an_older_version_is_fetched_again(server, monkeypatch):
    add_entry(monkeypatch, 'toy.bin', server.url('/weights.bin'), None, 'toy.bin')
    stale = cache_path('toy.bin')
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PAYLOAD[:200_000])
    with pytest.warns(UnpinnedChecksumWarning, match='incomplete .*deleted, downloading it again'):
        assert download('toy.bin', progress=False).read_bytes() == PAYLOAD
    assert server.requests == [('/weights.bin', None)]


def test_wrong_sha256_on_a_cache_hit_raises_and_keeps_the_file(server):
    url = server.url('/weights.bin')
    path = download(url, sha256=PAYLOAD_SHA256, progress=False)
    with pytest.raises(ChecksumMismatchError, match=f'expected {"0" * 64}, got {PAYLOAD_SHA256}; the file was kept'):
        download(url, sha256='0' * 64)
    assert path.read_bytes() == PAYLOAD and len(server.requests) == 1


def test_upper_case_sha256_is_the_same_digest(server, monkeypatch):
    url = server.url('/weights.bin')
    path = download(url, sha256=PAYLOAD_SHA256.upper(), progress=False)
    assert path.read_bytes() == PAYLOAD
    assert download(url, sha256=PAYLOAD_SHA256.upper()) == path and path.exists()
    assert verify(url, sha256=PAYLOAD_SHA256.upper()) == PAYLOAD_SHA256
    entry = add_entry(monkeypatch, 'toy.upper', url, PAYLOAD_SHA256.upper(), 'toy.upper.bin')
    assert entry.sha256 == PAYLOAD_SHA256
    with pytest.raises(ValueError, match="sha256 must be 64 hex digits, got 'xyz'"):
        download(url, sha256='xyz')


def test_zoo_tool_checks_sha256_on_a_cache_hit(server, monkeypatch, capsys):
    url = server.url('/weights.bin')
    zoo = load_tool('zoo.py')
    monkeypatch.setattr('sys.argv', ['zoo.py', 'download', url, '--sha256', PAYLOAD_SHA256.upper()])
    zoo.main()
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(cache_path(url))
    monkeypatch.setattr('sys.argv', ['zoo.py', 'download', url, '--sha256', '0' * 64])
    with pytest.raises(SystemExit) as exit_:
        run_main(zoo.main)
    assert exit_.value.code == 1 and 'sha256 mismatch' in capsys.readouterr().err
    assert cache_path(url).read_bytes() == PAYLOAD
