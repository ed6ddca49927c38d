"""SimRooms, the built-in simulated dataset (``mvsd synth``).

* :mod:`mvsd.sim.rooms` — rooms, placements and their impulse responses (pyroomacoustics).
* :mod:`mvsd.sim.render` — a picture of each placement (what the camera at the microphone sees).
* :mod:`mvsd.sim.speech` — dry speech from espeak-ng voices.
* :mod:`mvsd.sim.synth` — all of it into shards and a manifest, with the dataset builder.
"""
