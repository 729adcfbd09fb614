from .invp_loss import InvPLoss
from .joint_similarity_loss import joint_contrastive_loss, joint_distance_loss

__all__ = ['InvPLoss', 'joint_contrastive_loss', 'joint_distance_loss']
