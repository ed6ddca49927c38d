"""The data plane: samples, shards, manifests and the loader.

* :mod:`mvsd.data.sample` — one sample (image, audio, RIR, metadata) and its encoding.
* :mod:`mvsd.data.shards`, :mod:`mvsd.data.manifest` — WebDataset tar shards and Parquet manifests.
* :mod:`mvsd.data.builder` — the one builder behind synth, ingest and pseudo-pairs (resumable,
  quarantine for bad inputs).
* :mod:`mvsd.data.adapters` — ``mvsd ingest``: SoundSpaces pickles, Acoustic AVSpeech, folders.
* :mod:`mvsd.data.loader` — training batches; :mod:`mvsd.data.storage` — local paths and URLs.
* :mod:`mvsd.data.inspect` — ``mvsd data stats`` and ``mvsd data verify``; :mod:`mvsd.data.safe_pickle` —
  the restricted unpickler for untrusted files.
"""
