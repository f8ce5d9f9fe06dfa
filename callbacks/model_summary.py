"""Lightning's rich model summary, without FLOPs when none were counted."""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import RichModelSummary as LightningRichModelSummary
from pytorch_lightning.utilities.model_summary import get_formatted_model_size, get_human_readable_count

#: Lightning's styles of the summary table's columns (the others have none)
_COLUMN_STYLES = {" ": {"style": "dim"}, "Name": {"justify": "left", "no_wrap": True},
                  "Params": {"justify": "right"}, "Params per Device": {"justify": "right"},
                  "In sizes": {"justify": "right", "style": "white"},
                  "Out sizes": {"justify": "right", "style": "white"}}


class RichModelSummary(LightningRichModelSummary):
    """``pytorch_lightning.callbacks.RichModelSummary`` (same arguments) that leaves out the ``FLOPs`` column
    and the ``Total FLOPs`` line when no FLOPs were counted: Lightning 2.6 counts them only in a forward pass
    of the module's ``example_input_array``, which genforge's modules do not have, and would print a column
    of zeros and ``Total FLOPs: 0`` in every run. With FLOPs counted, Lightning's summary is printed as is."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        """Print the table of ``summary_data`` and the totals (Lightning's layout, less FLOPs when 0)."""
        if total_flops:
            return LightningRichModelSummary.summarize(summary_data, total_parameters, trainable_parameters,
                                                       model_size, total_training_modes, total_flops,
                                                       **summarize_kwargs)
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            table.add_column(name, **_COLUMN_STYLES.get(name, {}))
        for row in zip(*(values for _, values in columns)):
            table.add_row(*row)
        count = get_human_readable_count
        grid = Table.grid(expand=True)
        for label, value in (("Trainable params", count(int(trainable_parameters))),
                             ("Non-trainable params", count(int(total_parameters - trainable_parameters))),
                             ("Total params", count(int(total_parameters))),
                             ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
                             ("Modules in train mode", total_training_modes["train"]),
                             ("Modules in eval mode", total_training_modes["eval"])):
            grid.add_row(f"[bold]{label}[/]: {value}")
        console = get_console()
        console.print(table)
        console.print(grid)
