"""The converters' network: image -> room -> speech.

* :mod:`mvsd.models.visual` — the picture's encoder (ResNet-18 style).
* :mod:`mvsd.models.room` — the room head: per-band T60, DRR and the tail from the embedding.
* :mod:`mvsd.models.unet` — the spectrogram U-Net the flow refines with.
* :mod:`mvsd.models.net` — all three together, as one converter network.
"""
