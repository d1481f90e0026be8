"""Staged training: the stages in order, each from the previous one's checkpoint, each in its own process.

``train_stages`` first checks every stage (levels exist, settings map onto TRL) and decides, from
the stage folders alone, which stages are done: a finished stage is reused only when its identity
(``identity.py``: settings, problems, starting checkpoint) is unchanged. A changed stage — finished
or trained part-way — and any later stage trained from it stop the command with what changed,
before anything trains; ``retrain=True`` (``stagerl train --retrain``) replaces those folders and
trains them again. An unfinished stage with an unchanged identity resumes from its last
checkpoint (``grpo.train_stage``).

**One process per stage.** Each stage trains in a fresh child process (``multiprocessing`` spawn),
so its policy, reference model, optimizer, vLLM engine and CUDA memory are released when it ends
(the OS takes them back) before the next stage starts; a stage's re-levelling (``stage.relevel``)
samples the policy in a child of its own before that. The child dies with its parent. Under
``accelerate launch``/``torchrun`` every rank does the same: the ranks agree on a fresh
rendezvous port per stage through the launcher's store, so each stage's children form their own
process group. Rank 0 alone writes the stage folder; the ranks wait for each other after it does.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
from datetime import timedelta
from pathlib import Path
from collections.abc import Iterator
from typing import Any, Callable

from .. import console

if console.ENV in os.environ:
    # under a stagerl command (its console.setup set the variable), e.g. a stage's spawned child while
    # it unpickles its target: quiet before TRL (and vLLM, when installed) is imported below, since
    # they warn at import time; a plain library import leaves the warnings alone
    console.setup()

from ..config import RewardsConfig, StageConfig
from ..curriculum import stage_dir, stage_problems
from ..data.problem import Problem
from ..data.prompts import to_messages
from ..rundir import stage_finished, write_json
from .grpo import TrainConfigError, check_stage, latest_checkpoint, train_stage
from .identity import ACCEPT_TRL_ENV, changes, stage_identity
from .resume_state import drop_cut_short
from .trl_contract import check_contract
from .trl_vllm import ENV as TRL_VLLM_ENV
from .trl_vllm import child_value


class StageChangedError(ValueError):
    """A stage's settings, problems or starting checkpoint changed since it (or a later stage) trained."""


def finished(out_dir: Path) -> dict | None:
    """The stage.json of a completed stage folder (with its checkpoint present), else None."""
    if stage_finished(out_dir):
        info = json.loads((out_dir / "stage.json").read_text())
        info["checkpoint"] = str((out_dir / "checkpoint").resolve())
        return info
    return None


def _has_results(out_dir: Path) -> bool:
    metrics = out_dir / "metrics.jsonl"
    return ((out_dir / "stage.json").exists() or latest_checkpoint(out_dir / "checkpoints") is not None
            or (metrics.is_file() and metrics.stat().st_size > 0))


def _resume_note(out_dir: Path, cut: list[int]) -> str:
    """Where an unfinished stage goes on from (with what a kill cut short), or "" for a fresh stage."""
    if not _has_results(out_dir) and not cut:
        return ""
    last = latest_checkpoint(out_dir / "checkpoints")
    note = (f"resuming after step {last.name.rsplit('-', 1)[1]} ({last.name})" if last is not None
            else "resuming at step 0 (no complete checkpoint yet)")
    if cut:
        note += f"; {', '.join(f'checkpoint-{s}' for s in cut)}: save cut short (killed, or the disk filled), removed"
    return note + ", "


def _recorded_identity(out_dir: Path) -> dict | None:
    path = out_dir / "identity.json"
    return json.loads(path.read_text()) if path.is_file() else None


def check_trl() -> None:
    """Stop before any stage trains if the installed TRL moved a piece of ``trl_contract`` (or only warn
    with ``STAGERL_ACCEPT_TRL_CHANGE=1``)."""
    moved = check_contract()
    if not moved:
        return
    import trl

    text = (f"the installed trl {trl.__version__} moved what stagerl's trainer relies on (stagerl is tested with "
            "trl>=1.16,<1.17):\n  " + "\n  ".join(moved))
    if os.environ.get(ACCEPT_TRL_ENV) == "1":
        print(f"warning: {text}\n({ACCEPT_TRL_ENV}=1: training anyway)", flush=True)
        return
    raise TrainConfigError(f"{text}\nNothing was trained: install trl>=1.16,<1.17, or set {ACCEPT_TRL_ENV}=1 "
                           "to train anyway")


def _plan(policy: str, stages: list[StageConfig], problem_sets: list[list[Problem]], folders: list[Path],
          messages: Callable, retrain: bool) -> tuple[int, list[Path]]:
    """How many leading stages are reused as they are, and which folders must be emptied first."""
    current = policy
    for i, (stage, problems, out) in enumerate(zip(stages, problem_sets, folders)):
        ident = stage_identity(stage, problems, current, messages)
        info = finished(out)
        what = None
        if info is not None:
            diff = changes(info.get("identity"), ident)
            if not diff:
                current = info["checkpoint"]
                continue
            what = f"stage {out.name} finished with other settings ({'; '.join(diff)})"
        elif _has_results(out):
            diff = changes(_recorded_identity(out), ident)
            if diff:
                what = f"stage {out.name} was trained part-way with other settings ({'; '.join(diff)})"
        stale = [f for f in folders[i + 1:] if _has_results(f)]
        reasons = ([what] if what else []) + (
            [f"{', '.join(f.name for f in stale)} started from the {out.name} that is trained again now"] if stale else [])
        if reasons and not retrain:
            raise StageChangedError(
                f"{'; '.join(reasons)}. Nothing was trained: rerun with --retrain to train stage {out.name} "
                "(and the stages after it) again, replacing their folders, or restore the recipe")
        return i, ([out] if what else []) + stale
    return len(stages), []


class _Ranks:
    """This process's rank and a way for all ranks to agree, through the launcher's key-value store."""

    def __init__(self, tag: str) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.store = None
        self.tag = tag
        if self.world > 1:
            if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
                raise TrainConfigError("several processes: launch with `accelerate launch` or `torchrun` "
                                       "(stagerl uses their rendezvous store to run each stage in its own processes)")
            from torch.distributed import TCPStore

            self.store = TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                                  timeout=timedelta(hours=2))

    def share(self, key: str, make: Callable[[], str]) -> str:
        """A value made by rank 0 and read by every rank."""
        if self.store is None:
            return make()
        key = f"stagerl/{self.tag}/{key}"
        if self.rank == 0:
            self.store.set(key, make())
        return self.store.get(key).decode()

    def barrier(self, key: str) -> None:
        if self.store is not None:
            self.store.set(f"stagerl/{self.tag}/{key}/{self.rank}", "1")
            self.store.wait([f"stagerl/{self.tag}/{key}/{r}" for r in range(self.world)])


_calls = 0


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(("", 0))
        return str(s.getsockname()[1])


def _die_with_parent() -> None:
    try:  # Linux: the kernel kills this process when its parent dies (e.g. SIGKILLed)
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child(conn: Any, fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    _die_with_parent()
    console.setup()  # the parent's --verbose or quiet settings (STAGERL_VERBOSE travels in the environment)
    try:
        conn.send(("ok", fn(**kwargs)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", isinstance(e, ValueError), f"{type(e).__name__}: {e}"))
        raise


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` on top of this process's environment inside the block, which a child started there inherits."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_in_child(fn: Callable[..., Any], kwargs: dict[str, Any], env: dict[str, str]) -> Any:
    """``fn(**kwargs)`` in a fresh spawned process (all it loaded is freed when it exits); its result.
    ``env`` is in the child's environment from its start: a spawned child imports TRL while it
    unpickles its target, before its own code runs (TRL imports vLLM only where the stage generates
    with it: ``trl_vllm.py``)."""
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, kwargs), name=f"stagerl-{kwargs['stage'].name}")
    with _environment({**env, TRL_VLLM_ENV: child_value(kwargs["stage"])}):
        proc.start()
    send.close()
    msg = None
    try:
        while proc.is_alive() or recv.poll(0):
            if recv.poll(1.0):
                try:
                    msg = recv.recv()
                except EOFError:
                    pass
                break
        proc.join()
    except BaseException:
        proc.terminate()
        proc.join()
        raise
    name = kwargs["stage"].name
    if msg and msg[0] == "ok":
        return msg[1]
    if msg:
        raise (ValueError if msg[1] else RuntimeError)(f"stage {name!r}: {msg[2]}")
    raise RuntimeError(f"stage {name!r}: its training process died ({_death(proc.exitcode)}); "
                       "rerun the same command to resume from its last checkpoint")


def _death(code: int | None) -> str:
    """How a child ended, in words: a signal by name (SIGKILL with the out-of-memory killer's hint)."""
    if code is None or code >= 0:
        return f"exit code {code}"
    try:
        sig = signal.Signals(-code).name
    except ValueError:
        sig = f"signal {-code}"
    hint = ": often the out-of-memory killer (see `dmesg`), or a user or scheduler" if -code == signal.SIGKILL else ""
    return f"killed by {sig}{hint}"


def _run(fn: Callable[..., Any], ranks: _Ranks, isolate: bool, port_key: str, **kwargs: Any) -> Any:
    """``fn(**kwargs)``: in a spawned child (``isolate``), whose ranks form a fresh process group on a
    port the ranks agree on under ``port_key``; else in this process."""
    if not isolate:
        return fn(**kwargs)
    env = {}
    if ranks.world > 1:
        env = {"MASTER_PORT": ranks.share(port_key, _free_port), "TORCHELASTIC_USE_AGENT_STORE": "False"}
    return _run_in_child(fn, kwargs, env)


def _say(ranks: _Ranks, msg: str) -> None:
    if ranks.rank == 0:
        console.line(console.stamp(msg))


def train_stages(policy: str | Path, levels: dict[str, list[Problem]], stages: list[StageConfig],
                 run_dir: str | Path, rewards: RewardsConfig | None = None,
                 messages: Callable[[Problem], list[dict]] = to_messages, retrain: bool = False,
                 isolate: bool = True) -> list[dict]:
    """Train through ``stages`` in order, each from the previous stage's checkpoint; return their stage.json.

    Every stage's levels and settings are checked, and every recorded stage compared with what
    would train now, before any training starts (see the module docstring). ``isolate=False``
    trains in this process (for debugging; nothing is released between stages).
    """
    global _calls
    from .dev_eval import split_dev
    from .relevel import candidates, relevel_stage

    problem_sets = [stage_problems(stage, levels) for stage in stages]
    [candidates(stage, levels) for stage in stages if stage.relevel is not None]  # relevel's levels exist
    for stage, problems in zip(stages, problem_sets):
        split_dev(problems, stage)  # a dev set that cannot be built fails here, before any training
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise TrainConfigError(f"stage names must be unique, got {names}")
    for stage in stages:
        check_stage(stage)
    check_trl()
    _calls += 1
    ranks = _Ranks(str(_calls))
    folders = [stage_dir(run_dir, i, s) for i, s in enumerate(stages, start=1)]
    reuse, stale = _plan(str(policy), stages, problem_sets, folders, messages, retrain)
    if ranks.rank == 0:
        for folder in stale:
            shutil.rmtree(folder)
    ranks.barrier("planned")
    results: list[dict] = []
    current = str(policy)
    for i, (stage, problems, out) in enumerate(zip(stages, problem_sets, folders)):
        if i < reuse:
            info = finished(out)
        else:
            identity = stage_identity(stage, problems, current, messages)
            cut: list[int] = []
            if ranks.rank == 0:
                out.mkdir(parents=True, exist_ok=True)
                write_json(out / "identity.json", identity)
                cut = drop_cut_short(out / "checkpoints")
            ranks.barrier(f"{i}/identity")
            if stage.relevel is not None:  # keep only candidates in the band for the current policy
                problems = _run(relevel_stage, ranks, isolate, f"{i}/relevel-port", policy=current, stage=stage,
                                levels=levels, run_dir=run_dir, index=i + 1, messages=messages, rewards=rewards)
            _say(ranks, f"stage {out.name}: {len(problems)} problems of {', '.join(stage.levels)}, "
                 f"{_resume_note(out, cut)}up to {stage.max_steps} steps")
            info = _run(train_stage, ranks, isolate, f"{i}/port", policy=current, problems=problems, stage=stage,
                        out_dir=out, rewards=rewards, messages=messages, identity=identity)
        _say(ranks, ("" if i >= reuse else "reused finished ")
             + console.stage_end_line(out.name, info, stages[i + 1] if i + 1 < len(stages) else None))
        results.append(info)
        current = info["checkpoint"]
    return results
