"""genforge's methods, a subpackage per family (each holds its LightningModule, ``module.py``, its networks and
algorithm parts): :mod:`~lightning_modules.gan`, :mod:`~lightning_modules.colorization`,
:mod:`~lightning_modules.dcign`, :mod:`~lightning_modules.deep_gmm`, :mod:`~lightning_modules.pixelcnn`.
Shared by several families, here: the adversarial objectives, the two-network loop, the LR/momentum and
critic schedules, the optimizer wiring (:mod:`lightning_modules.optimization`) and :mod:`lightning_modules.networks`.
"""
