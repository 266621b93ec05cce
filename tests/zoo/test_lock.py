"""The zoo lock against a local hub (HF_ENDPOINT) and temporary caches: a hub entry the table does not fully pin is
locked to the commit and sha256 of its first download, later downloads keep to them, and a hub that changes (or a
lock file that cannot be read or written) gives a clear error and loses no lock."""
import dataclasses
import hashlib
import json
import os
import shutil

import pytest
import torch
from safetensors.torch import save

from petl_vision import zoo
from petl_vision.zoo import (ZOO, LockMismatchError, OfflineError, ZooDownloadError, ZooLockError, cache_path, download,
                             lock_path, pin_source, read_lock, verify)
from tests.conftest import load_tool
from tests.zoo.servers import HubServer, serve
from tests.zoo.test_hub import WEIGHTS, WEIGHTS_SHA256

REPO = 'timm/swin_tiny_patch4_window7_224.ms_in22k'
FIRST, SECOND = '1' * 40, '2' * 40  # the repo's main before and after an update
NEWER = save({'head.weight': torch.ones(3, 2)})
NEWER_SHA256 = hashlib.sha256(NEWER).hexdigest()
NAME = 'toy_swin.in22k'


@pytest.fixture(autouse=True)
def caches(tmp_path, monkeypatch):
    """Empty caches; ``toy_swin.in22k``, a hub entry with neither revision nor sha256, like the real Swin ones."""
    for var in ('HF_HUB_OFFLINE', 'PETL_VISION_OFFLINE', 'HF_HUB_CACHE'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf'))
    monkeypatch.setenv('PETL_VISION_CACHE', str(tmp_path / 'petl'))
    real = ZOO['swin_tiny_patch4_window7_224.in22k']
    assert real.revision is None and real.sha256 is None
    monkeypatch.setitem(ZOO, NAME, dataclasses.replace(real, name=NAME))
    return tmp_path


@pytest.fixture
def hub(monkeypatch):
    with serve(HubServer(repo=REPO, commit=FIRST, files={'model.safetensors': WEIGHTS})) as state:
        monkeypatch.setenv('HF_ENDPOINT', state.endpoint)
        yield state


def move_main(hub: HubServer, commit: str, data: bytes, keep_old: bool = True) -> None:
    """The repo gets a new commit on main holding ``data``; ``keep_old=False``: the old commit is gone (history
    rewritten)."""
    hub.older = {hub.commit: hub.files} if keep_old else {}
    hub.commit, hub.files = commit, {'model.safetensors': data}


def forget_hf_cache(caches) -> None:
    shutil.rmtree(caches / 'hf')


def test_first_download_locks_the_commit_and_sha256_then_needs_no_request(caches, hub):
    path = download(NAME, progress=False)
    assert path.read_bytes() == WEIGHTS and f'/snapshots/{FIRST}/' in str(path)
    record = read_lock()[NAME]
    assert (record.hub_repo, record.hub_file, record.revision, record.sha256) == \
        (REPO, 'model.safetensors', FIRST, WEIGHTS_SHA256)
    assert lock_path() == caches / 'petl' / 'zoo.lock.json'
    assert json.loads(lock_path().read_text())['entries'][NAME]['revision'] == FIRST
    requests = len(hub.requests)
    assert download(NAME) == path == cache_path(NAME) and verify(NAME) == WEIGHTS_SHA256
    assert len(hub.requests) == requests  # the locked commit is cached: not even a HEAD request


def test_locked_entry_keeps_its_commit_when_main_moves(caches, hub):
    download(NAME, progress=False)
    move_main(hub, SECOND, NEWER)
    forget_hf_cache(caches)  # a fresh machine with the same lock file
    path = download(NAME, progress=False)
    assert path.read_bytes() == WEIGHTS and f'/snapshots/{FIRST}/' in str(path)
    assert all(f'/resolve/{FIRST}/' in p for _, p in hub.requests[-2:])
    assert read_lock()[NAME].revision == FIRST


def test_offline_miss_of_a_locked_entry_names_the_locked_commit(caches, hub, monkeypatch):
    download(NAME, progress=False)
    forget_hf_cache(caches)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    requests = len(hub.requests)
    with pytest.raises(OfflineError, match=f'hf download {REPO} model.safetensors --revision {FIRST}'):
        download(NAME, progress=False)
    assert len(hub.requests) == requests


def test_hub_file_that_no_longer_matches_the_lock_is_a_clear_error_and_the_lock_is_kept(caches, hub):
    download(NAME, progress=False)
    locked = lock_path().read_bytes()
    hub.files['model.safetensors'] = NEWER  # the same commit now serves another file (a mirror, a rewritten repo)
    forget_hf_cache(caches)
    with pytest.raises(LockMismatchError, match=f'sha256 {NEWER_SHA256} is not the {WEIGHTS_SHA256} zoo entry '
                                                f'{NAME} was locked to in {lock_path()}.*the lock was kept.*'
                                                f'python tools/zoo.py unlock {NAME}'):
        download(NAME, progress=False)
    with pytest.raises(LockMismatchError, match=f'is not the {WEIGHTS_SHA256}'):
        verify(NAME)
    assert lock_path().read_bytes() == locked


def test_locked_commit_gone_from_the_hub_says_how_to_unlock(caches, hub):
    download(NAME, progress=False)
    move_main(hub, SECOND, NEWER, keep_old=False)
    forget_hf_cache(caches)
    with pytest.raises(ZooDownloadError, match=f'has no revision {FIRST} .*locked to in {lock_path()} on .*history '
                                               f'was rewritten.*python tools/zoo.py unlock {NAME}'):
        download(NAME, progress=False)
    assert read_lock()[NAME].revision == FIRST


def test_unreadable_lock_file_is_a_clear_error_and_never_overwritten(caches, hub):
    lock_path().parent.mkdir(parents=True)
    for text in ('{"version": 1, "entries": {', '{"version": 1, "entries": {"x": {"revision": "main"}}}'):
        lock_path().write_text(text)
        with pytest.raises(ZooLockError, match=f'lock file {lock_path()} cannot be read .*left untouched'):
            download(NAME, progress=False)
        assert lock_path().read_text() == text


def test_failed_lock_write_keeps_the_old_lock_and_leaves_no_temporary_file(caches, hub, monkeypatch):
    download(NAME, progress=False)
    locked = lock_path().read_bytes()
    other = 'toy_swin_b.in22k'
    monkeypatch.setitem(ZOO, other, dataclasses.replace(ZOO[NAME], name=other))

    def disk_full(fd):
        raise OSError(28, 'No space left on device')
    with monkeypatch.context() as patch, pytest.raises(OSError, match='No space left'):
        patch.setattr(os, 'fsync', disk_full)  # the atomic write's flush to disk fails
        download(other, progress=False)
    assert lock_path().read_bytes() == locked
    assert sorted(p.name for p in lock_path().parent.iterdir()) == ['zoo.lock.json', 'zoo.lock.json.lock']
    download(other, progress=False)
    assert set(read_lock()) == {NAME, other}


def test_lock_written_meanwhile_with_other_values_is_not_overwritten(caches, hub):
    download(NAME, progress=False)
    locked = lock_path().read_bytes()
    with pytest.raises(ZooLockError, match=f'locked meanwhile .* to revision {FIRST}'):
        zoo.lock.write_record(ZOO[NAME], SECOND, NEWER_SHA256)
    assert lock_path().read_bytes() == locked


def test_revision_pinned_entry_locks_its_sha256_and_a_table_pin_supersedes_the_lock(caches, hub, monkeypatch):
    download(NAME, progress=False)
    move_main(hub, SECOND, NEWER)
    monkeypatch.setitem(ZOO, NAME, dataclasses.replace(ZOO[NAME], revision=SECOND))  # like vit_large: revision only
    assert pin_source(ZOO[NAME]) == 'partial'  # the lock is for another commit: superseded
    assert download(NAME, progress=False).read_bytes() == NEWER
    assert (read_lock()[NAME].revision, read_lock()[NAME].sha256) == (SECOND, NEWER_SHA256)
    assert pin_source(ZOO[NAME]) == 'table+lock'
    blob = cache_path(NAME).resolve()
    blob.write_bytes(NEWER[:-1] + b'\x00')  # bit rot in the Hugging Face cache
    with pytest.raises(LockMismatchError, match=f'is not the {NEWER_SHA256}'):
        download(NAME)


def test_zoo_tool_list_shows_what_pins_each_entry_and_unlock_forgets_it(caches, hub, monkeypatch, capsys):
    tool = load_tool('zoo.py')

    def run(*args: str) -> dict[str, list[str]]:
        monkeypatch.setattr('sys.argv', ['zoo.py', *args])
        tool.main()
        return {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}

    rows = run('list')
    assert [rows[n][3] for n in (NAME, 'vit_base_patch16_224.in21k', 'vit_large_patch16_224.in21k',
                                 'vit_base_patch16_224.mae', 'point_mae.shapenet')] == \
        ['none', 'table', 'partial', 'none', 'none']
    assert rows[NAME][4] == f'hf:{REPO}@main' and rows['lock'] == ['lock', 'file:', str(lock_path())]
    download(NAME, progress=False)
    rows = run('list')
    assert rows[NAME][3:5] == ['lock', f'hf:{REPO}@{FIRST[:7]}'] and rows[NAME][5] == str(cache_path(NAME))
    run('unlock', NAME)
    assert NAME not in read_lock() and pin_source(ZOO[NAME]) == 'none'
    with pytest.raises(ZooLockError, match=f'holds no lock for {NAME!r}; locked: none'):
        run('unlock', NAME)


def test_where_an_unlocked_unpinned_entry_will_be_cached_names_no_branch_folder():
    """The hub cache names snapshots by commit; before the first download the commit of main is unknown."""
    path = cache_path(NAME)
    assert path.parts[-3:] == ('snapshots', '<commit of main>', 'model.safetensors')
