"""Mutual-learning training of both converters.

* :mod:`mvsd.train.distributed` — one round on Ray Train (``mvsd train``); its fingerprint.
* :mod:`mvsd.train.loop`, :mod:`mvsd.train.step`, :mod:`mvsd.train.state` — the per-worker loop,
  one optimizer step of both converters, their state and checkpoints.
* :mod:`mvsd.train.room` — round 0's image -> room steps before the main loop.
* :mod:`mvsd.train.pseudo` — pseudo-pairs from the unpaired pools (``mvsd pseudo``, Ray Data).
* :mod:`mvsd.train.rounds` — which data and start each round uses; ``mvsd mutual``.
* :mod:`mvsd.train.losslog` — the losses per step (DVCLive).
"""
