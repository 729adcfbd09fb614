# NPID-style baseline of InvP on the digits: the InvP digits recipe with the
# invariance weight at 0. The objective is then exactly NPID's
# non-parametric softmax restricted to the background set,
#     L = -log( exp(v_i.m_i/t) / sum_{j in top-M(i)} exp(v_i.m_j/t) ),
# i.e. the authors' `HardNegativePointLoss` (their NPID baseline with a
# background set), with the same bank, momentum, temperature, M, backbone,
# augmentation and schedule. It is NOT MMSelfSup's NPID (65,536 uniformly
# sampled negatives, t 0.07; see configs/npid/). The neighbour table is
# still maintained (cheap) but never read.
_base_ = ['./invp_resnet18-cifar_1xb64-coslr-20e_digits.py']

model = dict(lambda_inv=0.0)
