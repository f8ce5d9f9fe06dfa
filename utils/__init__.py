"""Framework utilities: config resolvers and checks, the walk over a config's ``_target_``s and the target
allowlist, atomic file writes and checkpoint I/O, checkpoint identity and loading, errors, images and plots,
hashing, the loggers (CSV, TensorBoard, W&B) and how a run ended. Import from the defining module
(e.g. ``from utils.errors import InputError``).
"""
