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


def use_token_if_available() -> None:
    """Send the cluster's token when there is one. A cluster started with `ray start` uses token
    authentication by default (Ray >= 2.59), but a driver joining it by address sends its token
    only with RAY_AUTH_MODE=token, and otherwise retries "InvalidAuthToken" until it gives up.
    A token sent to a cluster without authentication is ignored, so this is safe either way; an
    explicit RAY_AUTH_MODE is left as it is."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or token_file().is_file():
        os.environ["RAY_AUTH_MODE"] = "token"
        if "ray._raylet" in sys.modules:  # Ray read its config when imported: read it again
            try:
                from ray._raylet import Config

                Config.initialize("")
            except (ImportError, AttributeError):  # another Ray version: it reads it at init
                pass


def quiet_worker_logs() -> None:
    """Runs in every Ray worker process (actors included): without the dashboard (not installed,
    not needed) Ray Train's placement-group cleaner cannot reach the state API and warns about it
    every second."""
    logging.getLogger("ray.train.v2._internal.execution.controller.placement_group_cleaner").setLevel(
        logging.ERROR
    )
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


def init_ray(object_store_mb: int = DEFAULT_OBJECT_STORE_MB) -> None:
    """Connect this process to Ray (module docstring); a no-op when already connected."""
    if os.environ.get("RAY_ADDRESS"):
        use_token_if_available()  # before Ray is imported: it reads RAY_AUTH_MODE then
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
            raise ClusterError(
                f"cannot join the Ray cluster at RAY_ADDRESS={address}: {e}. Is it running (`ray status`)? "
                "A cluster with token authentication (Ray >= 2.59 turns it on for `ray start`) needs its "
                f"token here: in {token_file()} (the head node writes it there) or in RAY_AUTH_TOKEN"
            ) from None
    else:
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
