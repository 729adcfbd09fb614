# ContrastiveCrop + SimCLR on the CANVAS digits (see
# simclr_..._digits-canvas.py, its baseline): the recipe of
# ccrop-simclr_..._digits.py with every data set placed on the canvas.
_base_ = ['./ccrop-simclr_resnet18-cifar_1xb64-coslr-20e_digits.py']

canvas = dict(size=32, scale=(0.4, 0.7), seed=0)
train_dataloader = dict(dataset=dict(dataset=dict(canvas=canvas)))
val_dataloader = dict(dataset=dict(canvas=canvas))
val_cfg = dict(bank_dataloader=dict(dataset=dict(canvas=canvas)))
test_dataloader = dict(dataset=dict(canvas=canvas))
test_cfg = dict(bank_dataloader=dict(dataset=dict(canvas=canvas)))
