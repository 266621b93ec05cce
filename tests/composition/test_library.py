"""Adapter libraries (petl_vision/composition/library.py): the index records each adapter's file, digest, backbone,
plan and count; verify names a changed file; load_library rebuilds every adapter on a fresh backbone exactly, and
loads nothing when any requested entry does not fit."""
import datetime
import fcntl
import hashlib
import json
import threading

import pytest
import torch

import petl_vision as pv
from petl_vision.composition import library as library_module
from petl_vision.composition.library import AdapterLibrary, LibraryError, load_library
from petl_vision.tuners import adapter_parameters, backbone_fingerprint
from petl_vision.tuners.attach import adapter_set
from tests.conftest import tiny_vit

LORA = [{'type': 'LoRA', 'targets': 'blocks.*.attn.qkv', 'rank': 2}]
ADAPTFORMER = [{'type': 'AdaptFormer', 'targets': 'blocks.*.mlp', 'dim': 4}]
X = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def randomise(model, adapter: str, seed: int) -> None:
    """Non-zero weights (LoRA B and adapter up-projections start at zero: every adapter would equal the base)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapter_parameters(model, adapter):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))


def two_adapters(num_classes: int = 5):
    model = tiny_vit(num_classes).eval()
    pv.add_adapter(model, 'cars', LORA, trainable=('head',))
    pv.add_adapter(model, 'birds', ADAPTFORMER)
    randomise(model, 'cars', 1)
    randomise(model, 'birds', 2)
    return model


def outputs(model, adapter: str) -> torch.Tensor:
    pv.set_adapter(model, adapter)
    with torch.no_grad():
        return model(X)


@pytest.fixture
def built(tmp_path):
    """A library with the two adapters of one model, and the model."""
    model = two_adapters()
    lib = AdapterLibrary(tmp_path / 'lib')
    lib.add_model(model, 'cars', 'cars', task='classification', dataset='stanford_cars', metrics={'top1': 0.812})
    lib.add_model(model, 'birds', 'birds', task='classification', dataset='cub', metrics={'top1': 0.7, 'loss': 1.5})
    return lib, model


def test_index_records_file_digest_backbone_plan_count_and_metrics(built):
    lib, model = built
    assert lib.names() == ['birds', 'cars']
    cars = lib.get('cars')
    path = lib.path_of(cars)
    assert cars.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cars.file == f'cars-{cars.sha256[:8]}.safetensors' and path.parent == lib.directory
    assert cars.backbone == backbone_fingerprint(model)
    # 2 blocks x LoRA on q and v (A: 2x64, B: 64x2) + the head's delta (5x64 + 5)
    assert cars.trainable == pv.count_parameters(model, 'cars')['trainable'] == 2 * 2 * (2 * 64 + 64 * 2) + 5 * 64 + 5
    assert lib.get('birds').trainable == pv.count_parameters(model, 'birds')['trainable']
    assert cars.plan == 'LoRA blocks.*.attn.qkv rank=2 + LinearDelta head name=trained'
    assert (cars.task, cars.dataset, cars.metrics) == ('classification', 'stanford_cars', {'top1': 0.812})
    created = datetime.datetime.fromisoformat(cars.created)
    assert created.tzinfo is not None and abs(datetime.datetime.now(datetime.UTC) - created).total_seconds() < 60
    on_disk = json.loads(lib.index_path.read_text())
    assert on_disk['format'] == 'petl_vision.library/1' and on_disk['adapters']['birds']['metrics']['loss'] == 1.5
    assert sorted(p.name for p in lib.directory.iterdir()) == sorted(
        ['.library.lock', 'library.json', cars.file, lib.get('birds').file])  # no staging or temporary leftovers


def test_load_library_on_a_fresh_backbone_reproduces_every_adapter_exactly(built):
    lib, model = built
    fresh = tiny_vit().eval()
    assert load_library(fresh, lib.directory) is fresh
    assert pv.list_adapters(fresh) == ['birds', 'cars'] and pv.active_adapters(fresh) == ['birds']
    for name in ('cars', 'birds'):
        expected = outputs(model, name)
        assert not torch.allclose(expected, outputs(model, 'birds' if name == 'cars' else 'cars'))
        assert torch.equal(outputs(fresh, name), expected)
    only = tiny_vit().eval()
    load_library(only, lib.directory, names=['cars', 'cars'])  # a name given twice loads once
    assert pv.list_adapters(only) == ['cars'] and torch.equal(outputs(only, 'cars'), outputs(model, 'cars'))


def test_an_entry_for_another_backbone_is_refused_by_name_and_nothing_is_loaded(built):
    lib, _ = built
    other = two_adapters(num_classes=7)  # another head: another fingerprint
    lib.add_model(other, 'birds', 'birds7', dataset='cub')
    fresh = tiny_vit().eval()
    flags = [p.requires_grad for p in fresh.parameters()]
    before = outputs_base(fresh)
    with pytest.raises(LibraryError, match=r"nothing was loaded .*'birds7' was saved for a VisionTransformer "
                                           r'\(114,055 parameters'):
        load_library(fresh, lib.directory)
    assert pv.list_adapters(fresh) == [] and [p.requires_grad for p in fresh.parameters()] == flags
    assert torch.equal(outputs_base(fresh), before)
    load_library(fresh, lib.directory, names=['cars', 'birds'])  # the fitting ones, named
    assert pv.list_adapters(fresh) == ['cars', 'birds']


def outputs_base(model) -> torch.Tensor:
    with torch.no_grad():
        return model(X)


def test_verify_names_a_changed_file_and_load_library_refuses_it(built):
    lib, _ = built
    assert lib.verify() == {'birds': 'ok', 'cars': 'ok'}
    path = lib.path_of('cars')
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one bit pattern in the last tensor's bytes
    path.write_bytes(bytes(data))
    assert lib.verify() == {'birds': 'ok', 'cars': 'changed'}
    fresh = tiny_vit().eval()
    with pytest.raises(LibraryError, match=r"file of 'cars' .* is changed since it was added"):
        load_library(fresh, lib.directory)
    assert pv.list_adapters(fresh) == []
    lib.path_of('birds').unlink()
    assert lib.verify(['birds']) == {'birds': 'missing'}


def test_a_failure_while_loading_takes_the_loaded_adapters_off_and_restores_routing(built, monkeypatch):
    lib, model = built
    fresh = tiny_vit().eval()
    pv.add_adapter(fresh, 'p1', LORA)
    pv.add_adapter(fresh, 'p2', ADAPTFORMER)
    randomise(fresh, 'p1', 3)
    randomise(fresh, 'p2', 4)
    pv.set_adapter(fresh, ['p1', 'p2'], weights=[0.25, 0.75])
    before, flags = outputs_base(fresh), [p.requires_grad for p in fresh.parameters()]
    calls = []

    def fail_second(m, path, adapter=None):
        calls.append(adapter)
        if len(calls) == 2:
            raise RuntimeError('disk went away')
        return pv.load_tuners(m, path, adapter=adapter)

    monkeypatch.setattr(library_module, 'load_tuners', fail_second)
    with pytest.raises(RuntimeError, match='disk went away'):
        load_library(fresh, lib.directory)
    assert calls == ['birds', 'cars'] and pv.list_adapters(fresh) == ['p1', 'p2']
    assert pv.active_adapters(fresh) == ['p1', 'p2'] and adapter_set(fresh).weights == [0.25, 0.75]
    assert [p.requires_grad for p in fresh.parameters()] == flags and torch.equal(outputs_base(fresh), before)


def test_a_name_the_model_already_has_is_refused(built):
    lib, _ = built
    fresh = tiny_vit().eval()
    pv.add_adapter(fresh, 'cars', ADAPTFORMER)
    with pytest.raises(LibraryError, match="already has an adapter named 'cars'"):
        load_library(fresh, lib.directory)
    assert pv.list_adapters(fresh) == ['cars']
    with pytest.raises(KeyError, match=r"no adapter named 'dogs'; it has: birds, cars"):
        load_library(fresh, lib.directory, names=['birds', 'dogs'])


def test_add_copies_a_file_and_replaces_a_name_only_with_overwrite(built, tmp_path):
    lib, model = built
    file = pv.save_tuners(model, tmp_path / 'birds.safetensors', adapter='birds')
    entry = lib.add(file, 'birds_copy', task='classification')
    assert lib.path_of(entry).read_bytes() == file.read_bytes()
    assert entry.sha256 == hashlib.sha256(file.read_bytes()).hexdigest() and entry.plan == lib.get('birds').plan
    old = lib.get('cars')
    with pytest.raises(LibraryError, match="already has an adapter named 'cars'.*overwrite=True"):
        lib.add(file, 'cars')
    assert lib.get('cars') == old and lib.path_of(old).is_file()
    new = lib.add(file, 'cars', overwrite=True)
    assert new.sha256 == entry.sha256 and new.plan.startswith('AdaptFormer') and not lib.path_of(old).exists()
    assert len(list(lib.directory.glob('cars-*.safetensors'))) == 1


def test_remove_takes_out_the_entry_and_its_file(built):
    lib, _ = built
    path = lib.path_of('cars')
    assert lib.remove('cars').name == 'cars'
    assert lib.names() == ['birds'] and not path.exists()
    with pytest.raises(KeyError, match="no adapter named 'cars'; it has: birds"):
        lib.remove('cars')


def test_bad_input_is_refused_by_name_and_changes_nothing(built, tmp_path):
    lib, model = built
    before = lib.index_path.read_bytes()
    with pytest.raises(LibraryError, match="adapter name 'my.cars' must start"):
        lib.add_model(model, 'cars', 'my.cars')
    with pytest.raises(LibraryError, match="metrics must map names to finite numbers.*'top1': 'high'"):
        lib.add_model(model, 'cars', 'cars2', metrics={'top1': 'high'})
    not_tuners = tmp_path / 'notes.safetensors'
    not_tuners.write_bytes(b'not a safetensors file')
    with pytest.raises(ValueError, match='notes.safetensors is not a readable safetensors tuner file'):
        lib.add(not_tuners, 'notes')
    with pytest.raises(FileNotFoundError):
        lib.add(tmp_path / 'missing.safetensors', 'missing')
    default = pv.apply_tuners(tiny_vit(), 'bitfit')
    bitfit = pv.save_tuners(default, tmp_path / 'bitfit.safetensors')
    with pytest.raises(LibraryError, match=r'bitfit.safetensors trains backbone tensors directly \(BitFit\)'):
        lib.add(bitfit, 'bitfit')
    assert lib.index_path.read_bytes() == before
    assert not list(lib.directory.glob('.staging-*'))
    with pytest.raises(LibraryError, match=r'is not an adapter library \(no library.json\)'):
        AdapterLibrary(tmp_path / 'nowhere').list()
    lib.index_path.write_text('{"format": "petl_vision.library/1", "adapters": [1]}')
    with pytest.raises(LibraryError, match='is not a readable adapter library index'):
        lib.list()


def test_concurrent_adds_lose_no_entry_and_a_held_lock_times_out(built, tmp_path, monkeypatch):
    lib, model = built
    file = pv.save_tuners(model, tmp_path / 'cars.safetensors', adapter='cars')
    errors = []

    def add_many(prefix: str) -> None:
        try:
            for i in range(4):
                AdapterLibrary(lib.directory).add(file, f'{prefix}{i}')
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=add_many, args=(p,)) for p in ('a', 'b', 'c')]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert lib.names() == sorted(['birds', 'cars', *(f'{p}{i}' for p in 'abc' for i in range(4))])
    monkeypatch.setattr(library_module, 'LOCK_TIMEOUT_S', 0.2)
    with (lib.directory / '.library.lock').open('a') as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(LibraryError, match='stayed locked for 0 s .*another process is changing it'):
            lib.remove('a0')
    assert 'a0' in lib.names()
