"""Framework utilities: config resolvers and checks, atomic file writes and checkpoint I/O, checkpoint
identity and loading, the target allowlist, moved-module names, errors, images and plots, hashing,
the loggers (CSV, TensorBoard, W&B) and how a run ended.
"""

from utils.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "AtomicCheckpointIO": ".checkpoint_io",
    "CSVLogger": ".csv_logger",
    "InputError": ".errors",
    "MissingFileError": ".errors",
    "UntrustedConfigError": ".errors",
    "RunStatus": ".run_status",
    "TensorBoardLogger": ".tensorboard_logger",
    "WandbLogger": ".wandb_logger",
})
