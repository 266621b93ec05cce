"""Adapter composition: libraries of adapters on disk, weight-space mixing of adapters.

Mixing (docs/mixing.md): task-vector combinations (linear, task arithmetic, TIES, DARE, SVD), AdapterSoup
selection (by task vectors, or by domain embeddings and clustering: ``domains.py``), the sign-guided greedy mix
(``greedy.py``), magnitude pruning and sign analysis. ``library.py`` is imported as its own module.
"""
from ..tuners import dense_delta  # noqa: F401  (registers DenseDelta, what combined LoRA updates become)
from .combine import CombineReport, combine_adapters, head_ops, prune_adapter, prune_vectors
from .domains import domain_embedding, embed_domain, kmeans, select_adapters
from .greedy import GreedyMix, greedy_mix
from .merging import METHODS, disjoint_mean, elect_sign, merge_stack, trim
from .selection import adapter_soup, select_by_similarity, task_vector_similarity
from .signs import SignDifference, sign_difference, sign_difference_of
from .vectors import adapter_vectors

__all__ = ['METHODS', 'CombineReport', 'GreedyMix', 'SignDifference', 'adapter_soup', 'adapter_vectors',
           'combine_adapters', 'disjoint_mean', 'domain_embedding', 'elect_sign', 'embed_domain', 'greedy_mix',
           'head_ops', 'kmeans', 'merge_stack', 'prune_adapter', 'prune_vectors', 'select_adapters',
           'select_by_similarity', 'sign_difference', 'sign_difference_of', 'task_vector_similarity', 'trim']
