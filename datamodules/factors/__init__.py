"""Factor batches for DC-IGN: datasets whose images vary in known factors (faces3d rendered here, Aubry's
chairs, a factor folder), served in batches where one factor varies (:mod:`datamodules.factors.batches`).
"""

from utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "FactorBatches": ".batches",
    "GroupedFactorBatches": ".batches",
    "RedrawSampler": ".batches",
    "FactorDataModule": ".batches",
    "ChairRenders": ".chairs",
    "ChairsDataModule": ".chairs",
    "RenderedFaceBatches": ".faces3d",
    "Faces3DDataModule": ".faces3d",
    "FaceRenderer": ".faces3d_render",
    "FactorTable": ".factor_folder",
    "FactorFolderDataModule": ".factor_folder",
})
