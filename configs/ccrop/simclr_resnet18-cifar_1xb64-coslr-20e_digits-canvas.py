# SimCLR (the digits recipe, plain RandomResizedCrop) on the CANVAS digits:
# every digit,
# resized to 40-70 % of the side, sits at a fixed random position of a
# black 32 x 32 canvas (DigitsDataset(canvas=...)), so objects no longer fill
# the frame -- the setting ContrastiveCrop is made for. The baseline row of
# ccrop-simclr_..._digits-canvas.py; training, validation and test images
# are all canvas digits.
_base_ = ['../bsim/simclr_resnet18-cifar_1xb64-coslr-20e_digits.py']

canvas = dict(size=32, scale=(0.4, 0.7), seed=0)
train_dataloader = dict(dataset=dict(canvas=canvas))
val_dataloader = dict(dataset=dict(canvas=canvas))
val_cfg = dict(bank_dataloader=dict(dataset=dict(canvas=canvas)))
test_dataloader = dict(dataset=dict(canvas=canvas))
test_cfg = dict(bank_dataloader=dict(dataset=dict(canvas=canvas)))
