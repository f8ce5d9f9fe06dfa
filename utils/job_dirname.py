"""A multirun job's folder name, made of its overrides: ``3_model=lsgan,model.n_critic=5``.

conf/hydra/default.yaml names every job's folder with it (``hydra.sweep.subdir``) through the resolver
``${gf.job_dirname:<num>,<overrides>,<exclude_keys>}``, which :func:`register_resolver` installs
(:class:`utils.sweep_summary.SweepSummary` does, in the process that launches the jobs and in any process
a launcher unpickles it into), leaving out the overrides every job of the sweep shares (:func:`fixed_keys`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

#: the longest folder name (characters; file systems allow 255 bytes): longer names are cut and end in a hash
MAX_LENGTH = 120
#: characters kept as they are; every other one becomes ``_`` (``/`` becomes ``.``)
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+@%\[\]-]")
#: key prefixes that are noise in a name: Hydra's own settings and genforge's paths
NOISY_PREFIXES = ("hydra.", "hydra/", "paths.")
#: key endings that name a file or a folder (``ckpt_path``, ``data.root``, ``run_dir``)
PATH_KEY_ENDINGS = ("_path", "_dir", "_file", ".root", "root_dir")
#: a float literal with more digits than a name needs (Optuna's ``0.00012345678901234``)
_LONG_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$")


#: characters both Hydra's override grammar (its lexer's ID and UNQUOTED_CHAR) and a shell read as they are
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_/+.%@-]+")


def override_argument(key: str, value: str) -> str:
    """The command-line argument that sets ``key`` to the string ``value``, as Hydra's override grammar and a
    POSIX shell both read it: ``key=value`` when Hydra takes ``value`` unquoted, else the value in single
    quotes for Hydra and the whole in double quotes for the shell -- a job folder named by its overrides
    (``hydra.run.dir=.../1_model=lsgan``) is otherwise a parse error ("mismatched input '='")."""
    if _PLAIN_VALUE.fullmatch(value):
        return f"{key}={value}"
    quoted = value.replace("\\", "\\\\").replace("'", "\\'")
    shell = f"{key}='{quoted}'".replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    return f'"{shell}"'


def is_noise(key: str, value: str, exclude_keys: Iterable[str] = ()) -> bool:
    """Whether the override ``key=value`` stays out of a job's folder name: Hydra's settings (``hydra.*``),
    paths (``paths.*``, a key ending in ``_path``/``_dir``/``_file``/``root``, an absolute or home-relative
    value), and the keys in ``exclude_keys`` (Hydra's ``hydra.job.config.override_dirname.exclude_keys``).
    ``key`` may carry an override's ``+``/``++``/``~`` prefix."""
    bare = key.lstrip("+~")
    if bare == "hydra" or bare.startswith(NOISY_PREFIXES) or bare in set(exclude_keys):
        return True
    return bare.endswith(PATH_KEY_ENDINGS) or bare == "root" or value.startswith(("/", "~", "./", "../"))


def _short(value: str) -> str:
    """``value`` with a long float literal rounded to 4 significant digits (``0.000123456789`` ->
    ``0.0001235``); anything else as it is."""
    if len(value) > 8 and _LONG_FLOAT.match(value) and not value.lstrip("+-").isdigit():
        return f"{float(value):.4g}"
    return value


def job_dirname(num: int | str, overrides: Iterable[str], exclude_keys: Iterable[str] = (),
                max_length: int = MAX_LENGTH) -> str:
    """The folder name of multirun job ``num`` run with ``overrides`` (Hydra's ``hydra.overrides.task``).

    The job number comes first (names are unique and sort in launch order), then ``_`` and the overrides
    in command-line order joined by ``,`` (Hydra's ``override_dirname`` separators), without noise
    (:func:`is_noise`), long floats rounded (:func:`_short`), ``/`` written ``.`` and any character outside
    ``A-Za-z0-9._,=+@%[]-`` written ``_``. A name longer than ``max_length`` characters is cut and ends in
    ``_`` and the first 8 hex digits of the SHA-1 of the full overrides text, so two long names differ
    whenever their overrides do. No override left: the number alone (``"3"``).

    Examples: ``job_dirname(3, ["model=lsgan", "model.n_critic=5"]) == "3_model=lsgan,model.n_critic=5"``;
    ``job_dirname(0, ["model/objective=lsgan", "data.root=/data/x"]) == "0_model.objective=lsgan"``.

    Raises:
        ValueError: ``max_length`` too short for the number, ``_`` and a hash (< ``len(str(num)) + 18``).
    """
    prefix = str(num)
    if max_length < len(prefix) + 18:
        raise ValueError(f"max_length={max_length} leaves no room for overrides after job number {prefix}")
    items = []
    for override in overrides:
        key, _, value = str(override).partition("=")
        if not is_noise(key, value, exclude_keys):
            items.append(f"{key}={_short(value)}" if "=" in str(override) else key)
    if not items:
        return prefix
    text = ",".join(items)
    name = f"{prefix}_{_UNSAFE.sub('_', text.replace('/', '.'))}"
    if len(name) <= max_length:
        return name
    digest = hashlib.sha1(",".join(map(str, overrides)).encode()).hexdigest()[:8]
    return f"{name[:max_length - 9]}_{digest}"


def fixed_keys(task_overrides: Iterable[str]) -> list[str]:
    """The keys a multirun gives one value in every job: those of its command-line overrides (Hydra's
    ``hydra.overrides.task`` of the multirun) that are not sweeps (``model=gan,lsgan``, ``range(...)``,
    Optuna's ``choice(...)``/``interval(...)``), e.g. ``["debug", "logger"]`` for ``-m model=gan,lsgan
    debug=fdr logger=csv``. Overrides Hydra's parser refuses give ``[]`` (nothing is left out)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides([str(o) for o in task_overrides])
    except HydraException:
        return []
    return [override.key_or_group for override in parsed if not override.is_sweep_override()]


def register_resolver(fixed: Iterable[str] = ()) -> None:
    """Install ``${gf.job_dirname:num,overrides,exclude_keys}``: :func:`job_dirname` leaving out
    ``exclude_keys`` and the keys in ``fixed`` (:func:`fixed_keys` of the multirun being launched: a job's
    name then shows what varies, ``3_model=lsgan,model.n_critic=5``). Calling it again replaces it."""
    from omegaconf import OmegaConf

    fixed = list(fixed)
    OmegaConf.register_new_resolver(
        "gf.job_dirname",
        lambda num, overrides, exclude=(): job_dirname(num, list(overrides), [*(exclude or ()), *fixed]),
        replace=True)
