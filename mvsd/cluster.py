"""Joining Ray: one place for how every mvsd command connects (training, pseudo-pairs, and the
dataset builder's ``shards.executor: ray``).

* With ``RAY_ADDRESS`` set (``auto``, ``host:6379`` of a ``ray start --head``, or
  ``ray://host:10001`` with the ``ray[client]`` extra installed), join that cluster: every node
  needs the ``mvsd`` package installed and the dataset and checkpoint folders on storage that all
  nodes see (README, "Ray cluster").
* Without it, always a private local instance (``address="local"``) with a bounded object store
  and no dashboard: ``ray.init()`` alone would join a Ray the user started with ``ray start`` (or
  follow its stale address file) and then refuse the resources given here.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

from mvsd.errors import ClusterError

DEFAULT_OBJECT_STORE_MB = 256


def token_file() -> Path:
    """Where `ray start --head` writes the cluster's token (Ray's default token path)."""
    return Path.home() / ".ray" / "auth_token"


def _token_available() -> bool:
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")) or token_file().is_file()


def _use_token() -> None:
    """Switch this driver to token authentication (RAY_AUTH_MODE=token) before it joins."""
    os.environ["RAY_AUTH_MODE"] = "token"
    if "ray._raylet" in sys.modules:  # Ray read its config when imported: read it again
        try:
            from ray._raylet import Config

            Config.initialize("")
        except (ImportError, AttributeError):  # another Ray version: it reads it at init
            pass


class DropHarmless(logging.Filter):
    """Drops a logger's records whose message contains one of ``phrases``. A filter on the logger
    itself outlives Ray Train's logging set-up (``dictConfig`` resets the levels of ``ray.train.*``
    loggers, not their filters)."""

    def __init__(self, *phrases: str):
        super().__init__()
        self.phrases = phrases

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(p in record.getMessage() for p in self.phrases)


# Ray Train controller messages that a busy machine brings out, each with a traceback, about
# bookkeeping that does not touch the run: an autoscaler request that timed out ("safe to
# ignore", Ray says) and the placement-group cleaner's stop timing out at shutdown.
_HARMLESS = {
    "ray.train.v2._internal.execution.scaling_policy.autoscaling_coordinator_client": ("safe to ignore",),
    "ray.train.v2._internal.callbacks.placement_group_callback": ("Failed to stop PlacementGroupCleaner",),
}


def quiet_worker_logs() -> None:
    """Runs in every Ray worker process (actors included): without the dashboard (not installed,
    not needed) Ray Train's placement-group cleaner cannot reach the state API and warns about it
    every second; on a busy machine the controller logs harmless timeouts with tracebacks."""
    logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner").setLevel(
        logging.ERROR
    )
    for name, phrases in _HARMLESS.items():
        logging.getLogger(name).addFilter(DropHarmless(*phrases))
    # ... and when the GCS query times out instead, its monitor thread dies with a 30-line
    # traceback on the user's console; the cleaner only matters if the controller crashes.
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if args.thread is not None and args.thread.name == "PlacementGroupCleanerMonitor":
            return
        previous(args)

    threading.excepthook = hook


def quiet_train_worker_logs() -> None:
    """Called by the training function on each Ray Train worker (after Ray Train configured the
    worker's logging, which resets levels set earlier): its INFO lines (each reported result)
    stay in Ray's log files, and a worker's error is not logged with its traceback before the
    driver gets it — mvsd's fit_round reports the same error once (one line where it is known)."""
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    logging.getLogger("ray.train.v2._internal.util").setLevel(logging.CRITICAL)
    try:  # "Reporting training result ..." per checkpoint: its logger is named by its file's path
        from ray.train.v2._internal.execution import context

        logging.getLogger(context.__file__).setLevel(logging.WARNING)
    except ImportError:  # another Ray version
        pass


def init_ray(object_store_mb: int = DEFAULT_OBJECT_STORE_MB) -> None:
    """Connect this process to Ray (module docstring); a no-op when already connected.

    Joining ``RAY_ADDRESS``: a cluster started with ``ray start`` uses token authentication by
    default (Ray >= 2.59), and a driver sends its token only with ``RAY_AUTH_MODE=token``; a
    cluster made another way may not, and then a driver in token mode cannot take its tasks'
    calls. So without ``RAY_AUTH_MODE`` the first try goes without a token and, when that is
    refused and this machine has the cluster's token, a second try with it (saying so).
    """
    import ray

    if ray.is_initialized():
        return
    hook = {"worker_process_setup_hook": "mvsd.cluster.quiet_worker_logs"}
    # ray.init installs a SIGTERM handler that dumps a stack and aborts (exit 134); keep ours
    # (mvsd.cli: stop cleanly, exit 143)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    address = os.environ.get("RAY_ADDRESS")
    if address:
        try:
            ray.init(address=address, log_to_driver=True, runtime_env=hook)
        except ConnectionError as e:
            if "RAY_AUTH_MODE" in os.environ or not _token_available():
                raise ClusterError(
                    f"cannot join the Ray cluster at RAY_ADDRESS={address}: {e}. Is it running (`ray "
                    "status`)? If it uses token authentication (Ray >= 2.59 turns it on for `ray start`), "
                    f"put its token in {token_file()} (the head node writes it there) or RAY_AUTH_TOKEN, "
                    "and export RAY_AUTH_MODE=token"
                ) from None
            print(
                f"mvsd: the Ray cluster at {address} refused a driver without a token; joining with the "
                "token on this machine (export RAY_AUTH_MODE=token to skip the first try)",
                file=sys.stderr,
            )
            _use_token()
            try:
                ray.init(address=address, log_to_driver=True, runtime_env=hook)
            except ConnectionError as e2:
                raise ClusterError(
                    f"cannot join the Ray cluster at RAY_ADDRESS={address}, with or without the token in "
                    f"{token_file()} / RAY_AUTH_TOKEN: {e2}. Is it running (`ray status`)?"
                ) from None
    else:
        # A private instance: Ray turns token authentication on for it (kept: other users of this
        # machine cannot submit work to it) and warns on every start that it did; say nothing.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        # Ray Train's preemption watcher polls for draining nodes (spot instances of a cluster);
        # this one machine cannot be drained, and the watcher's actor logs a core-worker error line
        # ("has constructor arguments in the object store and max_restarts > 0") on every round.
        # The processes of a private instance inherit this environment; a user's choice stands.
        os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
        ray.init(
            address="local",
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            object_store_memory=object_store_mb * 2**20,
            log_to_driver=True,
            runtime_env=hook,
        )
    if main and callable(previous):
        signal.signal(signal.SIGTERM, previous)
