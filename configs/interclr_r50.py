# Entry point of the headline method:
#   tools/dist_train.sh configs/interclr_r50.py 8
# InterCLR-MoCo v2, ResNet-50, ImageNet-1k (data/imagenet/), 8 GPUs x 32,
# 200 epochs: the paper's recipe, see the inherited file.
_base_ = ['interclr/interclr-moco_resnet50_8xb32-coslr-200e_in1k.py']
