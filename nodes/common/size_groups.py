"""Items of a batch grouped by size, so that padding each group to its largest item wastes little compute."""
from __future__ import annotations

from typing import Sequence


def similar_size_groups(sizes: Sequence[int], max_waste: float) -> list[list[int]]:
    """Indexes into `sizes`, largest first, cut into groups whose padded size (items x largest) stays within
    (1 + max_waste) x their real size; a group holds at least one item. Indexes keep their order in a group."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    groups: list[list[int]] = []
    real = 0
    for i in order:
        if groups and (len(groups[-1]) + 1) * sizes[groups[-1][0]] <= (1 + max_waste) * (real + sizes[i]):
            groups[-1].append(i)
            real += sizes[i]
        else:
            groups.append([i])
            real = sizes[i]
    return [sorted(group) for group in groups]
