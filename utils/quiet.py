"""Known console noise a user can do nothing about, silenced by its exact text.

:func:`silence_known_noise` is called once at start-up by :func:`utils.bootstrap.bootstrap`, which
``train.py``, ``evaluate.py`` and ``colorize.py`` run at import time (so that processes ``ddp_spawn`` starts,
which import the script again, get it too). Each filter names one message of one source; anything else of the
same logger or module still shows. Noise silenced elsewhere, at its source: the FLOPs of the model summary
(:mod:`callbacks.model_summary`), the "Checkpoint directory ... exists and is not empty." of a run resuming
into its own folder (:mod:`callbacks.checkpoint`), Lightning's ``sync_dist`` advice for FID/KID and Parzen
values, which are the same on every rank (:mod:`callbacks.evaluation` logs them with ``sync_dist=True``).
"""

from __future__ import annotations

import logging
import re
import warnings


class DropMessages(logging.Filter):
    """A logging filter that drops the records whose whole message matches one of ``patterns``."""

    def __init__(self, *patterns: str) -> None:
        super().__init__()
        self.patterns = [re.compile(pattern) for pattern in patterns]

    def filter(self, record: logging.LogRecord) -> bool:
        """``False`` (drop) for a matching record."""
        message = record.getMessage()
        return not any(pattern.fullmatch(message) for pattern in self.patterns)


#: logger name -> the filter of its known noise (module-level, so that adding it twice is a no-op)
LOG_FILTERS = {
    "pytorch_lightning.utilities.rank_zero": DropMessages(
        # pytorch_lightning/trainer/connectors/logger_connector/logger_connector.py (configure_logger): an
        # advertisement for Lightning's cloud logger, printed by every Trainer without a LitLogger
        re.escape("💡 Tip: For seamless cloud logging and experiment tracking, try installing "
                  "[litlogger](https://pypi.org/project/litlogger/) to enable LitLogger, which logs metrics "
                  "and artifacts automatically to the Lightning Experiments platform."),
        # pytorch_lightning/trainer/connectors/callback_connector.py (_configure_model_summary_callback):
        # says that conf/callbacks/default.yaml's model_summary replaces Lightning's default one, every run
        r"Trainer already configured with model summary callbacks: \[.*\]\. "
        + re.escape("Skipping setting a default `ModelSummary` callback."),
    ),
    # alembic/runtime/migration.py (MigrationContext.__init__): what alembic finds in an Optuna RDB storage
    # (e.g. hydra.sweeper.storage=sqlite:///...) each time Optuna opens it
    "alembic.runtime.migration": DropMessages(
        re.escape("Context impl SQLiteImpl."), re.escape("Will assume non-transactional DDL.")),
    # alembic/runtime/plugins.py (Plugin.__init__, alembic >= 1.18): a line per built-in alembic plugin
    # when Optuna's RDB storage imports alembic.autogenerate: alembic's internals, at INFO
    "alembic.runtime.plugins": DropMessages(r"setup plugin alembic\.[\w.]+"),
}

#: Lightning 2.6's pytorch_lightning/utilities/_pytree.py:21 builds ``LeafSpec()``, which torch 2.13
#: deprecates (torch/utils/_pytree.py, a ``typing_extensions.deprecated`` FutureWarning on every
#: instantiation): Lightning's code, not the user's; printed once per process by the first batch
LEAF_SPEC = ("`isinstance(treespec, LeafSpec)` is deprecated, "
             "use `isinstance(treespec, TreeSpec) and treespec.is_leaf()` instead.")


def silence_known_noise() -> None:
    """Install the filters of the known noise above (logging filters on their loggers, ``warnings`` filters
    for their message, category and module). Idempotent: calling it again adds nothing."""
    for name, dropper in LOG_FILTERS.items():
        logging.getLogger(name).addFilter(dropper)  # addFilter skips a filter already there
    # filterwarnings removes an identical filter before inserting it, so this is idempotent too
    warnings.filterwarnings("ignore", message=re.escape(LEAF_SPEC) + r"\Z", category=FutureWarning,
                            module=r"pytorch_lightning\.utilities\._pytree\Z")
