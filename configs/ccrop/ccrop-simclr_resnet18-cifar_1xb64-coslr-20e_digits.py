# ContrastiveCrop + SimCLR on the embedded digits. Identical to its baseline,
# the SimCLR digits recipe (configs/bsim/simclr_..._digits.py, the base of
# every SimCLR-based digits row), except that the crop is ContrastiveCrop (same
# scale / crop_ratio_range), the training set is wrapped in
# ContrastiveCropDataset and ContrastiveCropHook refreshes the boxes.
# Schedule scaled from the authors' 100/100 of 500 epochs to this 20-epoch
# budget in the same proportion: warm-up 4 epochs, boxes refreshed after
# epochs 4/8/12/16. alpha 0.1 and threshold 0.1 as the authors' small
# (32 px) recipes.
_base_ = ['../bsim/simclr_resnet18-cifar_1xb64-coslr-20e_digits.py']

# the digits view pipeline of configs/_base_/datasets/digits_bs64.py with
# its RandomResizedCrop replaced by ContrastiveCrop (same scale range)
view_pipeline = [
    dict(type='ContrastiveCrop', scale=32, alpha=0.1,
         crop_ratio_range=(0.3, 1.0), backend='pillow'),
    dict(type='NumpyToPIL', to_rgb=False),
    dict(type='torchvision/RandomAffine', degrees=15, translate=(0.1, 0.1),
         shear=10, interpolation='bilinear'),
    dict(type='PILToNumpy', to_bgr=False),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4,
                          contrast=0.4)],
         prob=0.8),
]
train_pipeline = [
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ContrastiveCropDataset',
        dataset=dict(type='DigitsDataset', split='train',
                     pipeline=train_pipeline)))

custom_hooks = [
    dict(type='ContrastiveCropHook', warmup_epochs=4, interval=4,
         threshold=0.1, pipeline={{_base_.test_pipeline}}, batch_size=256)
]
