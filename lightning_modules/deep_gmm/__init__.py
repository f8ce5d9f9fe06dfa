"""Deep GMM (van den Oord & Schrauwen 2014): the network of linear transforms, the (hard) EM loop, its
E-step path heuristic, L-BFGS-B M-step, sufficient statistics and the shallow-GMM baseline. Preset:
``conf/model/deep_gmm.yaml``; data: :mod:`datamodules.patches`; findings: ``docs/deep_gmm.md``.
"""
