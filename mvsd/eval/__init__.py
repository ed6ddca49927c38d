"""Evaluation: metrics, the blind RT60 estimator and the baselines.

* :mod:`mvsd.eval.metrics` — STFT distances (AViTAR's definition), RT60/DRR error through
  deconvolution, PESQ-WB, STOI, ESTOI, SI-SDR; the :data:`METRICS` registry.
* :mod:`mvsd.eval.rt60` — AViTAR-style blind RT60 estimator (train, estimate, save, load).
* :mod:`mvsd.eval.baselines` — identity / mean RIR / retrieval / oracle RIR / oracle T60 (the
  parametric RIR of the true room) / floor_envelope and floor_expfit (true band envelopes, new
  noise) for VAM; identity / WPE / oracle dry / Lebart late-reverberation suppression with a
  blind or the true T60 for dereverberation; all ``fn(sample, ctx) -> (T,)``.

Typical use::

    bank = RirBank.from_dataset("datasets/simrooms")            # train split
    ctx = BaselineContext(bank=bank)
    rows = evaluate_baseline(BASELINES["vam"]["retrieval"], read_samples(ds, ["test_unseen"]), ctx, "vam")
    mean_scores(rows)   # {'stft_distance': ..., 'rt60_error': ..., ...}
"""

from mvsd.eval.baselines import (
    BASELINES,
    BaselineContext,
    RirBank,
    WpeParams,
    evaluate_baseline,
    get_baseline,
    mean_scores,
    read_samples,
    tune_wpe,
)
from mvsd.eval.metrics import METRICS, Reference, score
from mvsd.eval.rt60 import (
    Rt60Estimator,
    estimate_rt60,
    load_rt60_estimator,
    save_rt60_estimator,
    train_rt60_estimator,
)

__all__ = [
    "BASELINES", "BaselineContext", "METRICS", "Reference", "RirBank", "Rt60Estimator", "WpeParams",
    "estimate_rt60", "evaluate_baseline", "get_baseline", "load_rt60_estimator", "mean_scores",
    "read_samples", "save_rt60_estimator", "score", "train_rt60_estimator", "tune_wpe",
]  # fmt: skip
