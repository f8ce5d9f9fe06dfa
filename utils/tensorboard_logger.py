"""Lightning's TensorBoard logger with a filled HPARAMS tab and a truthful session status."""

from __future__ import annotations

import time
from argparse import Namespace
from typing import Any

from lightning_fabric.utilities.logger import _convert_params, _flatten_dict
from pytorch_lightning.loggers import TensorBoardLogger as _LightningTensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch import Tensor
from torch.utils.tensorboard.summary import hparams

#: ``end_session`` status -> the hparams plugin's session status. Its API (tensorboard's
#: plugins/hparams/api.proto) has no "aborted": a run stopped before its end, which neither finished nor
#: failed, ends as ``STATUS_UNKNOWN``
SESSION_STATUS = {"finished": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE,
                  "preempted": api_pb2.STATUS_UNKNOWN, "interrupted": api_pb2.STATUS_UNKNOWN}


def _hparam_value(value: Any) -> bool | int | float | str:
    """``value`` as TensorBoard's hparams can hold it: bool, int, float and str as they are, a one-element
    tensor as its number, anything else (lists, ``None``, larger tensors) as its text."""
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    return value if isinstance(value, (bool, int, float, str)) else str(value)


class TensorBoardLogger(_LightningTensorBoardLogger):
    """:class:`pytorch_lightning.loggers.TensorBoardLogger` (same arguments) whose HPARAMS tab lists the run.

    With ``monitor`` set (e.g. ``val/fid``), :meth:`log_hyperparams` writes into the run's event files
    (``<log_dir>/events.out.tfevents.*``) the hparams plugin's *experiment* (the hyper-parameter names and
    ``monitor`` as its metric) and *session start* (this run's flattened values, ``model/optimizer_g/lr``),
    so the HPARAMS tab shows the run with its ``monitor`` scalars; :meth:`end_session` writes the session's
    end status. Without ``monitor`` it behaves as Lightning's logger.

    Args:
        monitor: the metric the HPARAMS tab shows beside the hyper-parameters (logged by the module as a
            scalar of that name); it replaces Lightning's ``hp_metric`` placeholder (``default_hp_metric`` is
            then ignored). ``None``: Lightning's behaviour.
        save_dir, name, version, ..., **kwargs: as :class:`pytorch_lightning.loggers.TensorBoardLogger`.
    """

    def __init__(self, *args: Any, monitor: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._monitor = monitor
        if monitor is not None:
            self._default_hp_metric = False  # ``monitor`` replaces Lightning's ``hp_metric`` placeholder

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, metrics: dict[str, Any] | None = None,
                        step: int | None = None) -> None:
        """Keep ``params`` for ``<log_dir>/hparams.yaml`` (as Lightning does) and, with ``monitor`` set, write
        the hparams experiment and session start: ``params`` flattened with ``/`` (``{"model": {"lr": 2e-4}}``
        -> ``model/lr``), values TensorBoard cannot hold (lists, ``None``, objects) as strings. No scalar of
        ``monitor`` is written (its values come from training), nor a session end (see :meth:`end_session`);
        ``metrics``, when given, are logged as scalars at ``step``; empty ``params`` write no HPARAMS data.
        Without ``monitor``: Lightning's method.
        """
        if self._monitor is None:
            return super().log_hyperparams(params, metrics, step)
        params = _convert_params(params)
        super().log_hyperparams(params)  # keeps them for hparams.yaml; writes nothing (no hp_metric)
        if metrics:
            self.log_metrics(metrics, step)
        flat = self._sanitize_params(_flatten_dict(params))  # as Lightning's: {"a": {"b": 1}} -> {"a/b": 1}
        flat = {key: _hparam_value(value) for key, value in flat.items()}
        if not flat:  # nothing to show; would replace the session start of an earlier call
            return
        metric_names = {self._monitor: 0.0, **dict.fromkeys(metrics or {}, 0.0)}  # names only, values unused
        experiment, session_start, _ = hparams(flat, metric_names)  # not its session end: see end_session
        writer = self.experiment._get_file_writer()
        writer.add_summary(experiment)
        writer.add_summary(session_start)

    @rank_zero_only
    def end_session(self, status: str) -> None:
        """Write the hparams session end with ``status`` into ``<log_dir>`` and flush: ``"finished"`` ->
        ``STATUS_SUCCESS``, ``"failed"`` -> ``STATUS_FAILURE``, ``"preempted"``/``"interrupted"`` ->
        ``STATUS_UNKNOWN`` (the plugin has no "aborted"). Works after :meth:`finalize` closed the writer: the
        summary goes to a new event file in the same folder, which TensorBoard reads with the others.

        Raises:
            ValueError: ``status`` is none of the above.
        """
        if status not in SESSION_STATUS:
            raise ValueError(f"end_session status must be one of {sorted(SESSION_STATUS)}, got {status!r}")
        info = plugin_data_pb2.SessionEndInfo(status=SESSION_STATUS[status], end_time_secs=time.time())
        data = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(session_end_info=info))
        summary = Summary(value=[Summary.Value(tag=metadata.SESSION_END_INFO_TAG, metadata=data)])
        self.experiment._get_file_writer().add_summary(summary)
        self.experiment.flush()
