"""``python -m flows.serve``: run the inbox flow on its schedule (``orchestration.cron``).

Needs a Prefect server: start one with ``prefect server start`` (SQLite under ``.prefect/`` by
default) and point ``PREFECT_API_URL`` at it (``http://127.0.0.1:4200/api``), or at Prefect Cloud
or a remote server. This process registers the deployment ``inbox/mvsd-inbox`` with the schedule,
then polls the server and runs each scheduled (or manually triggered) flow run until stopped, one
at a time.
"""

from __future__ import annotations

import os

from flows.common import main, params


def serve(
    cron: str | None = None,
    interval: float | None = None,
    name: str = "mvsd-inbox",
    params_file: str | None = None,
    overrides: list[str] | None = None,
) -> None:
    """Serve the inbox flow as deployment NAME on CRON (default orchestration.cron) or every
    INTERVAL seconds."""
    from prefect.settings import PREFECT_API_URL

    from flows.inbox import inbox

    if not PREFECT_API_URL.value() and not os.environ.get("PREFECT_API_URL"):
        raise SystemExit(
            "flows.serve needs a Prefect server: run `prefect server start`, then "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`"
        )
    p = params(params_file, overrides)
    schedule = {"interval": interval} if interval else {"cron": cron or p.orchestration.cron}
    print(f"serving flow 'inbox' as {name!r} on {schedule} against {PREFECT_API_URL.value()}")
    # One run at a time: runs take the repository lock anyway, and runs that pile up while one
    # trains (a short interval, a slow round) would each start Python, torch and Ray meanwhile.
    inbox.serve(name=name, parameters={"params_file": params_file, "overrides": overrides}, limit=1, **schedule)


class _Serve:  # `main` wants a flow-like object: a name and the function
    name = "serve"
    fn = staticmethod(serve)

    def __call__(self, **kwargs):
        return serve(**kwargs)


if __name__ == "__main__":
    main(_Serve())
