
from .invp_loss import InvPLoss  # noqa: F401
from .joint_similarity_loss import joint_contrastive_loss, joint_distance_loss  # noqa: F401,E501
