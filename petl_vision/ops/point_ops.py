"""Point-cloud operations in pure torch: farthest point sampling, k nearest neighbours, patch grouping.

They replace the CUDA extensions Point-MAE / Point-BERT / DAPT build (``pointnet2_ops`` FPS, ``knn_cuda``) so the
point transformer runs on any device. Layouts: points ``(B, N, 3)``, indices ``int64``.
"""
import torch


def farthest_point_sample(xyz: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of ``n`` points chosen by farthest point sampling, starting at point 0 as pointnet2's CUDA op does.

    Each step adds the point farthest from those already chosen (ties: lowest index). The loop runs over the
    ``n`` samples; the distance update is vectorised over the batch and the points.

    Args:
        xyz: (B, N, 3) points.
        n: number of samples, 1 <= n <= N.

    Returns:
        (B, n) int64 indices into N; the first ``m`` of them are the FPS sample of size ``m``.
    """
    B, N, _ = xyz.shape
    if not 1 <= n <= N:
        raise ValueError(f'farthest_point_sample: cannot sample {n} of {N} points; ask for 1 to {N}')
    idx = torch.zeros(B, n, dtype=torch.long, device=xyz.device)
    min_dist = torch.full((B, N), float('inf'), dtype=xyz.dtype, device=xyz.device)
    batch = torch.arange(B, device=xyz.device)
    farthest = torch.zeros(B, dtype=torch.long, device=xyz.device)
    for i in range(n):
        idx[:, i] = farthest
        dist = (xyz - xyz[batch, farthest][:, None]).square().sum(-1)  # (B, N)
        min_dist = torch.minimum(min_dist, dist)
        farthest = min_dist.argmax(-1)
    return idx


def knn(query: torch.Tensor, ref: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` points of ``ref`` nearest to each query point, nearest first.

    Args:
        query: (B, M, 3).
        ref: (B, N, 3), k <= N.

    Returns:
        (B, M, k) int64 indices into N.
    """
    N = ref.shape[1]
    if not 1 <= k <= N:
        raise ValueError(f'knn: cannot take {k} neighbours among {N} points; ask for 1 to {N}')
    # exact distances: the matmul shortcut reorders near-equal neighbours
    dist = torch.cdist(query, ref, compute_mode='donot_use_mm_for_euclid_dist')  # (B, M, N)
    return dist.topk(k, dim=-1, largest=False, sorted=True).indices


def index_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gather ``points`` (B, N, C) at ``idx`` (B, *S) -> (B, *S, C)."""
    B, C = points.shape[0], points.shape[-1]
    flat = idx.reshape(B, -1)  # (B, S)
    out = points.gather(1, flat[..., None].expand(-1, -1, C))  # (B, S, C)
    return out.reshape(*idx.shape, C)


def group(xyz: torch.Tensor, num_group: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a point cloud into ``num_group`` patches of ``group_size`` points (FPS centres + kNN).

    Args:
        xyz: (B, N, 3) points.

    Returns:
        neighborhood: (B, G, K, 3) patch points relative to their centre (nearest first, so index 0 is the centre).
        center: (B, G, 3) patch centres.
    """
    center = index_points(xyz, farthest_point_sample(xyz, num_group))  # (B, G, 3)
    idx = knn(center, xyz, group_size)  # (B, G, K)
    neighborhood = index_points(xyz, idx) - center[:, :, None]  # (B, G, K, 3)
    return neighborhood, center
