"""Selection for a new domain (petl_vision/composition/domains.py): domain embeddings are the mean frozen features
(adapters off) stored in the library index; select_adapters ranks by cosine or takes the new domain's k-means
cluster; old indexes without embeddings load and selection says how to add them."""
import json

import pytest
import torch

import petl_vision as pv
from petl_vision.composition import domain_embedding, embed_domain, kmeans, select_adapters
from petl_vision.composition.domains import pooled_features
from petl_vision.composition.library import AdapterLibrary, LibraryError
from tests.conftest import load_tool, tiny_swin, tiny_vit

LORA = [{'type': 'LoRA', 'rank': 2}]
# hand-made domain embeddings: two groups (around e1 and around e2) and one alone (e3)
EMBEDDINGS = {'a1': [1.0, 0.1, 0.0], 'a2': [1.0, -0.1, 0.0], 'a3': [0.9, 0.0, 0.1],
              'b1': [0.0, 1.0, 0.1], 'b2': [0.1, 1.0, 0.0], 'c': [0.0, 0.0, 1.0]}


@pytest.fixture
def library(tmp_path):
    """A library of six LoRA adapters of one tiny ViT, with the hand-made embeddings; and the model."""
    model = tiny_vit().eval()
    lib = AdapterLibrary(tmp_path / 'lib')
    for name, vector in EMBEDDINGS.items():
        pv.add_adapter(model, name, LORA)
        lib.add_model(model, name, name)
        lib.set_embedding(name, vector, 'cls', images=10)
    return lib, model


def cos(a, b) -> float:
    a, b = torch.tensor(a), torch.tensor(b)
    return float(a @ b / a.norm() / b.norm())


def test_similarity_returns_the_k_most_cosine_similar_domains(library):
    lib, _ = library
    query = [1.0, 0.05, 0.0]
    chosen = select_adapters(lib, torch.tensor(query), k=3)
    assert [n for n, _ in chosen] == ['a1', 'a3', 'a2']  # a1 (0.9988) > a3 (0.9927) > a2 (0.9888)
    for name, sim in chosen:
        assert sim == pytest.approx(cos(query, EMBEDDINGS[name]), abs=1e-6)
    # features (N, C) are averaged first: the mean of these two is the query above
    feats = torch.tensor([[2.0, 0.1, 0.0], [0.0, 0.0, 0.0]])
    assert select_adapters(lib, feats, k=3) == chosen


def test_cluster_returns_the_new_domains_k_means_cluster(library):
    lib, _ = library
    near_b = torch.tensor([0.08, 1.0, 0.02])
    chosen = select_adapters(lib, near_b, k=3, by='cluster')
    assert [n for n, _ in chosen] == ['b2', 'b1']  # the b cluster, most similar first (b2 0.9996 > b1 0.9937)
    assert [n for n, _ in select_adapters(lib, torch.tensor([0.1, 0.0, 1.0]), k=3, by='cluster')] == ['c']
    # one cluster: everything, by similarity
    assert len(select_adapters(lib, near_b, k=1, by='cluster')) == 6


def test_kmeans_finds_the_groups_and_is_seeded():
    points = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [9.0, 0.0]])
    centres, labels = kmeans(points, 3, seed=0)
    assert labels[0] == labels[1] == labels[2] and labels[3] == labels[4]
    assert len({int(labels[0]), int(labels[3]), int(labels[5])}) == 3
    members = labels == labels[0]
    assert torch.allclose(centres[labels[0]], points[members].mean(0), atol=1e-6)  # a centre is its members' mean
    again = kmeans(points, 3, seed=0)
    assert torch.equal(again[1], labels) and torch.equal(again[0], centres)
    same, _ = kmeans(points.repeat(2, 1)[:6], 6, seed=3)  # k = N: every point its own centre
    assert sorted(map(tuple, same.tolist())) == sorted(map(tuple, points.tolist()))
    with pytest.raises(ValueError, match=r'k must be in 1..6'):
        kmeans(points, 7)


def test_embedding_is_the_mean_frozen_feature_with_adapters_off():
    model = tiny_vit().eval()
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tokens = model.forward_features(x)  # (5, 17, C): no adapter yet
    pv.add_adapter(model, 'a', LORA)
    with torch.no_grad():
        for p in pv.tuners.adapter_parameters(model, 'a'):
            p.normal_(0, 0.5)  # an active adapter that changes the features: the embedding must not see it
    assert torch.allclose(domain_embedding(model, x, 'cls'), tokens[:, 0].mean(0), atol=1e-5)
    assert torch.allclose(domain_embedding(model, x.split(2), 'mean'), tokens[:, 1:].mean((0, 1)), atol=1e-5)
    swin = tiny_swin().eval()
    with torch.no_grad():
        fmap = swin.forward_features(x)  # (5, H, W, C)
    assert torch.allclose(domain_embedding(swin, x, 'mean', batch_size=2), fmap.mean((0, 1, 2)), atol=1e-5)
    with pytest.raises(ValueError, match="no CLS token.*pool='mean'"):
        pooled_features(swin, x, 'cls')
    with pytest.raises(ValueError, match='pool must be one of'):
        domain_embedding(model, x, 'max')


def test_embed_domain_stores_the_embedding_and_images_select_through_the_model(tmp_path):
    model = tiny_vit().eval()
    lib = AdapterLibrary(tmp_path / 'lib')
    g = torch.Generator().manual_seed(0)
    domains = {'dark': torch.rand(6, 3, 32, 32, generator=g) - 1.5, 'bright': torch.rand(6, 3, 32, 32, generator=g)}
    for name, images in domains.items():
        pv.add_adapter(model, name, LORA)
        lib.add_model(model, name, name)
        entry = embed_domain(lib, model, name, images, pool='mean')
        assert entry.embedding['pool'] == 'mean' and entry.embedding['images'] == 6
        assert torch.allclose(torch.tensor(entry.embedding['vector']), domain_embedding(model, images, 'mean'),
                              atol=1e-6)
    assert AdapterLibrary(lib.directory).get('dark').embedding == lib.get('dark').embedding  # in library.json
    new = domains['bright'][:3] + 0.01
    assert select_adapters(lib, new, k=1, model=model)[0][0] == 'bright'
    with pytest.raises(ValueError, match='need model='):
        select_adapters(lib, new, k=1)
    with pytest.raises(LibraryError, match='another backbone'):
        select_adapters(lib, new, k=1, model=tiny_vit(num_classes=3))


def test_old_index_without_embeddings_loads_and_selection_says_how_to_add_them(library):
    lib, model = library
    data = json.loads(lib.index_path.read_text())
    for fields in data['adapters'].values():
        del fields['embedding']  # an index written before embeddings existed
    lib.index_path.write_text(json.dumps(data))
    assert lib.get('a1').embedding is None
    fresh = tiny_vit().eval()
    pv.composition.library.load_library(fresh, lib.directory, ['a1'])  # still loads
    with pytest.raises(LibraryError, match=r"\['a1', 'a2', 'a3', 'b1', 'b2', 'c'\].*no domain embedding.*embed_domain"):
        select_adapters(lib, torch.ones(3), k=2)


def test_bad_selection_arguments_are_refused(library):
    lib, _ = library
    with pytest.raises(ValueError, match='k must be in 1..6'):
        select_adapters(lib, torch.ones(3), k=0)
    with pytest.raises(ValueError, match='by must be one of'):
        select_adapters(lib, torch.ones(3), k=2, by='nearest')
    with pytest.raises(ValueError, match='has shape \\(4,\\).*3 numbers'):
        select_adapters(lib, torch.ones(4), k=2)
    lib.set_embedding('c', [1.0, 2.0], 'mean')
    with pytest.raises(LibraryError, match='mix pools'):
        select_adapters(lib, torch.ones(3), k=2)
    with pytest.raises(LibraryError, match='finite'):
        lib.set_embedding('c', [1.0, float('nan')], 'cls')
    assert [n for n, _ in select_adapters(lib, torch.tensor([1.0, 0.0, 0.0]), k=1, names=['b1', 'a2'])] == ['a2']


def test_the_adapters_tool_shows_the_embedding_in_one_line(library):
    lib, _ = library
    tool = load_tool('adapters.py')
    assert tool.embedding_text(lib.get('a1')) == 'cls feature, 3 numbers, 10 images'
    lib.set_embedding('a1', [1.0, 0.0], 'mean')
    assert tool.embedding_text(lib.get('a1')) == 'mean feature, 2 numbers'
