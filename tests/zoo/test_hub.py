"""Hub-hosted zoo entries through huggingface_hub against a local hub (HF_ENDPOINT) and a temporary HF_HOME:
one copy on disk shared with timm, no network when cached, clear offline and wrong-revision errors."""
import dataclasses
import hashlib
import os
import socket

import pytest
import torch
from mmengine.runner import load_checkpoint
from safetensors.torch import save

from petl_vision.zoo import (ZOO, ChecksumMismatchError, OfflineError, ZooDownloadError, cache_path, download,
                             resolve, verify)
from tests.conftest import load_tool, tiny_vit
from tests.zoo.servers import HubServer, serve

COMMIT = '677f7d814cf0d89b7e65b1ea49277ed508a62363'  # the pinned revision of vit_base_patch16_224.in21k
WEIGHTS = save(tiny_vit().state_dict())
WEIGHTS_SHA256 = hashlib.sha256(WEIGHTS).hexdigest()


@pytest.fixture(autouse=True)
def caches(tmp_path, monkeypatch):
    """Empty Hugging Face and project caches; a ViT entry shaped like the real one, holding a tiny ViT."""
    for var in ('HF_HUB_OFFLINE', 'PETL_VISION_OFFLINE', 'HF_HUB_CACHE', 'HF_ENDPOINT'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf'))
    monkeypatch.setenv('PETL_VISION_CACHE', str(tmp_path / 'petl'))
    real = ZOO['vit_base_patch16_224.in21k']
    monkeypatch.setitem(ZOO, 'toy_vit.in21k', dataclasses.replace(real, name='toy_vit.in21k', sha256=WEIGHTS_SHA256))
    return tmp_path


@pytest.fixture
def hub():
    with serve(HubServer(repo='timm/vit_base_patch16_224.orig_in21k', commit=COMMIT,
                         files={'model.safetensors': WEIGHTS})) as state:
        yield state


def fill_hf_cache(root, repo: str, commit: str, filename: str, data: bytes):
    """The layout huggingface_hub (and so timm) leaves: blobs/<sha256>, snapshots/<commit>/<file> -> blob, refs/main."""
    folder = root / f'models--{repo.replace("/", "--")}'
    blob = folder / 'blobs' / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    link = folder / 'snapshots' / commit / filename
    link.parent.mkdir(parents=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / 'refs').mkdir()
    (folder / 'refs' / 'main').write_text(commit)
    return link


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('network access')
    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)


def files_holding(root, data: bytes) -> list:
    return [p for p in root.rglob('*') if p.is_file() and not p.is_symlink() and p.read_bytes() == data]


def test_vit_already_in_the_hf_cache_loads_with_no_download_and_no_second_copy(caches, no_network):
    link = fill_hf_cache(caches / 'hf' / 'hub', 'timm/vit_base_patch16_224.orig_in21k', COMMIT, 'model.safetensors',
                         WEIGHTS)
    model = tiny_vit()
    torch.nn.init.zeros_(model.head.weight)
    load_checkpoint(model, 'zoo://toy_vit.in21k')
    torch.testing.assert_close(model.head.weight, tiny_vit().head.weight)
    assert resolve('zoo://toy_vit.in21k') == link == cache_path('toy_vit.in21k')
    assert len(files_holding(caches, WEIGHTS)) == 1 and not (caches / 'petl').exists()


def test_fresh_download_into_hf_home_then_served_offline(caches, hub, monkeypatch):
    monkeypatch.setenv('HF_ENDPOINT', hub.endpoint)
    path = download('toy_vit.in21k', progress=False)
    assert path == caches / 'hf' / 'hub' / 'models--timm--vit_base_patch16_224.orig_in21k' / 'snapshots' / COMMIT / \
        'model.safetensors'
    assert path.read_bytes() == WEIGHTS and path.resolve().name == WEIGHTS_SHA256
    assert [m for m, _ in hub.requests] == ['HEAD', 'GET']
    assert all(f'/resolve/{COMMIT}/model.safetensors' in p for _, p in hub.requests)
    assert download('toy_vit.in21k') == path and len(hub.requests) == 2  # pinned commit cached: no request
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    assert download('toy_vit.in21k') == path and verify('toy_vit.in21k') == WEIGHTS_SHA256
    assert len(hub.requests) == 2 and len(files_holding(caches, WEIGHTS)) == 1


def test_wrong_revision_names_repo_and_revision(hub, monkeypatch):
    monkeypatch.setenv('HF_ENDPOINT', hub.endpoint)
    wrong = 'f' * 40
    monkeypatch.setitem(ZOO, 'toy_vit.in21k', dataclasses.replace(ZOO['toy_vit.in21k'], revision=wrong))
    with pytest.raises(ZooDownloadError, match=f'repo timm/vit_base_patch16_224.orig_in21k has no revision {wrong} '
                                               r'\(zoo entry toy_vit.in21k\); fix the revision'):
        download('toy_vit.in21k', progress=False)


@pytest.mark.parametrize('variable', ['HF_HUB_OFFLINE', 'PETL_VISION_OFFLINE'])
def test_offline_miss_says_how_to_fetch_it_elsewhere(caches, hub, monkeypatch, variable):
    monkeypatch.setenv('HF_ENDPOINT', hub.endpoint)
    monkeypatch.setenv(variable, '1')
    with pytest.raises(OfflineError) as error:
        download('toy_vit.in21k', progress=False)
    message = str(error.value)
    assert f'hf download timm/vit_base_patch16_224.orig_in21k model.safetensors --revision {COMMIT}' in message
    assert 'huggingface-cli download' in message and str(caches / 'hf' / 'hub') in message
    assert 'models--timm--vit_base_patch16_224.orig_in21k' in message and 'offline mode is on' in message
    assert hub.requests == []


def test_pinned_sha256_is_checked_on_every_cache_hit(caches, no_network, monkeypatch):
    link = fill_hf_cache(caches / 'hf' / 'hub', 'timm/vit_base_patch16_224.orig_in21k', COMMIT, 'model.safetensors',
                         WEIGHTS[:-4] + b'\x00' * 4)  # a bit-rotted blob
    with pytest.raises(ChecksumMismatchError, match=f'expected {WEIGHTS_SHA256}, got .*hf cache rm'):
        download('toy_vit.in21k')
    assert link.exists()


def test_unpinned_hub_file_is_checked_against_the_sha256_the_hub_reports(hub, monkeypatch):
    monkeypatch.setenv('HF_ENDPOINT', hub.endpoint)
    monkeypatch.setitem(ZOO, 'toy_vit.in21k', dataclasses.replace(ZOO['toy_vit.in21k'], sha256=None))
    hub.etags['model.safetensors'] = 'a' * 64  # the content is not what the hub says it is
    with pytest.raises(ChecksumMismatchError, match=f'expected {"a" * 64}, got {WEIGHTS_SHA256}'):
        download('toy_vit.in21k', progress=False)


def test_zoo_tool_list_and_path_show_the_hf_cache(caches, hub, monkeypatch, capsys):
    monkeypatch.setenv('HF_ENDPOINT', hub.endpoint)
    zoo = load_tool('zoo.py')
    monkeypatch.setattr('sys.argv', ['zoo.py', 'path', 'toy_vit.in21k'])
    zoo.main()
    assert 'not downloaded' in capsys.readouterr().out
    monkeypatch.setattr('sys.argv', ['zoo.py', 'download', 'toy_vit.in21k'])
    zoo.main()
    path = download('toy_vit.in21k')
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(path)
    monkeypatch.setattr('sys.argv', ['zoo.py', 'verify', 'toy_vit.in21k'])
    zoo.main()
    assert capsys.readouterr().out.strip() == f'{WEIGHTS_SHA256}  {path}'
    monkeypatch.setattr('sys.argv', ['zoo.py', 'list'])
    zoo.main()
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert 'hf:timm/vit_base_patch16_224.orig_in21k@677f7d8' in rows['toy_vit.in21k'] and str(path) in \
        rows['toy_vit.in21k']
    assert 'url' in rows['point_mae.shapenet'] and 'not downloaded' in rows['point_mae.shapenet']
