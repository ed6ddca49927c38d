"""mvsd: visual acoustic matching and visually-informed dereverberation with mutual learning.

Start at the README; the package map:

* ``mvsd.config``  — params.yaml -> frozen dataclasses
* ``mvsd.audio_io`` — reading, checking and encoding audio (16 kHz mono float32)
* ``mvsd.sim``     — SimRooms: rooms, RIRs (pyroomacoustics), rendered images, speech
* ``mvsd.data``    — samples, shards, manifest, source adapters, streaming loader
* ``mvsd.cli``     — the ``mvsd`` command
"""

from mvsd.config import Params, load_params
from mvsd.errors import BadInput, ConfigError, MvsdError

__version__ = "0.1.0"
__all__ = ["Params", "load_params", "BadInput", "ConfigError", "MvsdError", "__version__"]
