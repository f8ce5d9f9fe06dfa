"""Lightning callbacks, configured for every run by ``conf/callbacks/default.yaml``; which apply to which
module is the protocol table of :mod:`callbacks.protocols`.
"""

from utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "ModelCheckpoint": ".checkpoint",
    "ColorizationGrid": ".colorization_grid",
    "DivergenceGuard": ".divergence",
    "FeatureDistanceEvaluation": ".evaluation",
    "ParzenEvaluation": ".evaluation",
    "FactorScatter": ".factor_scatter",
    "ShallowGMMBaseline": ".gmm_baseline",
    "Interruption": ".interruption",
    "RichModelSummary": ".model_summary",
    "ProgressBar": ".progress_bar",
    "FixedNoise": ".protocols",
    "LatentPrior": ".protocols",
    "Embeddings": ".protocols",
    "Samples": ".protocols",
    "GeneratorSteps": ".protocols",
    "Colorizer": ".protocols",
    "Traversable": ".protocols",
    "ScatteredFactors": ".protocols",
    "ParameterCount": ".protocols",
    "SplitDatasets": ".protocols",
    "ResumedHistory": ".resumed_history",
    "RunIdentity": ".run_identity",
    "EpochImageCallback": ".samples",
    "SampleGrid": ".samples",
    "LatentInterpolation": ".samples",
    "EmbeddingInterpolation": ".samples",
    "TrainingMonitor": ".training_monitor",
    "LatentTraversal": ".traversal",
})
