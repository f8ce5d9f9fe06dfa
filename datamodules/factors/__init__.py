"""Factor batches for DC-IGN: datasets whose images vary in known factors (faces3d rendered here, Aubry's
chairs, a factor folder), served in batches where one factor varies (:mod:`datamodules.factors.batches`).
"""
