# Semi-supervised ImageNet-1k fine-tuning on 10% of the labels: as the 1%
# protocol (resnet50_4xb64-steplr-20e_in1k-1pct.py) with weight decay 1e-4 and
# the 128,116-image subset `data/imagenet/meta/train_10percent.txt`
# ("<relative image path> <class index>" lines). Same lr / head-multiplier
# grid, same way of passing the pre-trained backbone.
_base_ = './resnet50_4xb64-steplr-20e_in1k-1pct.py'

train_dataloader = dict(dataset=dict(ann_file='meta/train_10percent.txt'))
optim_wrapper = dict(optimizer=dict(weight_decay=1e-4))
