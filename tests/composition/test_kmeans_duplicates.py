"""k-means over domain embeddings with fewer distinct points than clusters (two adapters trained on one domain
share its embedding): every cluster gets a centre, the distinct point its own cluster."""
import torch

from petl_vision.composition.domains import kmeans


def test_kmeans_with_duplicate_points_gives_every_cluster_a_centre():
    points = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    centres, labels = kmeans(points, 3, seed=0)
    assert centres.shape == (3, 2)
    assert labels[0] != labels[2] and labels[1] != labels[2]
    assert torch.equal(centres[labels[2]], points[2])
    assert torch.equal(kmeans(torch.ones(2, 4), 2)[0], torch.ones(2, 4))  # all points equal
