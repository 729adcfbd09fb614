"""NeighbourMemory (InvP's bank + kNN table): the refresh rule and one
update, worked out by hand."""
import math

import pytest
import torch

from mmssl_ext.models.invp import NeighbourMemory
from mmssl_ext.models.invp.neighbour_memory import nearest_others

T = torch.tensor


def test_nearest_others_by_hand():
    ranked = T([
        [0, 5, 1, 2],  # anchor first: replaced by the (k+1)-th (1)
        [3, 4, 1, 0],  # anchor 2 absent: first k kept
        [3, 4, 2, 0],  # anchor at position k: dropped with it
        [4, 2, 3, 1],  # anchor 2 second: replaced by the (k+1)-th (3)
    ])
    got = nearest_others(ranked, T([0, 2, 2, 2]), 2)
    assert got.tolist() == [[1, 5], [3, 4], [3, 4], [4, 3]]
    # fewer than k+1 ranked entries cannot happen: InvP requires
    # loss.n_background >= num_neighbours + 1 (test_invp.py)


def test_update_writes_table_rows_and_blends_bank():
    m = NeighbourMemory(5, 2, num_neighbours=2, momentum=0.5)
    m.bank.copy_(T([[1., 0.], [0., 1.], [1., 0.], [0., 1.], [1., 0.]]))
    ranked = T([[3, 1, 4], [1, 0, 2]])  # anchors 1 and 3
    m.update(T([1, 3]), T([[2., 0.], [0., 3.]]), ranked=ranked)
    assert m.neighbours.tolist() == [[0, 0], [3, 4], [0, 0], [1, 0], [0, 0]]
    s = 1 / math.sqrt(2)
    torch.testing.assert_close(m.bank[1], T([s, s]))  # (0,1) + (1,0)
    torch.testing.assert_close(m.bank[3], T([0., 1.]))
    torch.testing.assert_close(m.bank[0], T([1., 0.]))


def test_bad_arguments():
    with pytest.raises(ValueError, match='num_neighbours'):
        NeighbourMemory(3, 2, num_neighbours=3)
    m = NeighbourMemory(3, 2, num_neighbours=1)
    with pytest.raises(IndexError, match=r'\[0, 3\)'):
        m.update(T([3]), T([[1., 0.]]), ranked=T([[0, 1]]))
    assert set(m.state_dict()) == {'bank', 'initialized', 'neighbours'}
