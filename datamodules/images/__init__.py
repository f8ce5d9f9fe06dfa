"""Image datasets: batches ``(images float32 (B, C, H, W) in [-1, 1], labels)`` (the contract of
:mod:`datamodules.base`): embedded (mnist5k, digits, photos) and read from the user's copy in its
standard layout (mnist, cifar10, celeba, lsun, tfd, image_folder).
"""
