"""Dry (anechoic) speech for a simulated dataset.

Two sources:

* espeak-ng: :func:`make_speakers` draws many synthetic voices (accent x voice variant x pitch x
  speed), :class:`SentenceGenerator` writes varied English sentences, :func:`synthesize` speaks one
  text and :func:`espeak_clip` cuts a clip of an exact length.
* a folder of real recordings (``--speech-dir``): :class:`FolderSpeech`.

Everything returned is float32 mono at ``SAMPLE_RATE`` (16 kHz) and deterministic given the seed or
``np.random.Generator`` passed in.
"""

from __future__ import annotations

import html
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from pathlib import Path
from typing import TypeVar

import numpy as np
import soundfile as sf

from mvsd.audio_io import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SAMPLE_RATE, load_audio, prepare_audio
from mvsd.errors import BadInput

ESPEAK = "espeak-ng"
INSTALL_HINT = "espeak-ng is not installed or not on PATH; install it with `apt-get install espeak-ng`"
# Accents in preference order; only those this espeak-ng install has (and not MBROLA ones) are used.
ENGLISH_VOICES = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
    "en-gb-x-gbclan", "en-gb-x-gbcwmd",
)  # fmt: skip
# Variants that sound like a (synthetic) human and add no echo. Left out on purpose: m2 and f2-f5
# (their files say `echo 120-140 10-15`: a 120-140 ms echo at 10-15 %, i.e. built-in reverberation,
# wrong for *dry* speech), Alicia (echo 40 50), whisper*, croak, klatt*, robosoft*, UniRobot,
# Demonic, announcer, Tweaky, Zac (cartoon child), caleb (voicing 0 = whisper) and those that zero
# formants (Andy, Lee, Denis), which sound like a telephone or a robot.
HUMAN_VARIANTS = (
    "m1", "m3", "m4", "m5", "m6", "m7", "m8", "Mike", "robert", "Michael", "paul", "quincy",
    "f1", "linda", "belinda", "steph", "steph2", "steph3", "Andrea", "Annie", "anika",
)  # fmt: skip
PITCH_RANGE = (30, 70)  # espeak-ng -p (0-99, 50 = the variant's own pitch)
SPEED_RANGE = (135, 185)  # espeak-ng -s, words per minute (its default is 175)
PAUSE_S = 0.2  # silence between sentences of one clip, seconds
BREAK_S = 1.2  # SSML break between sentences spoken in one espeak-ng run, seconds
SPLIT_S = 0.7  # silences at least this long (seconds) separate those sentences; commas give <0.3
# A SentenceGenerator sentence (9.7 words on average), trimmed, lasts as long as 7.8 words at
# espeak-ng's -s rate (measured over 160 sentences of 40 speakers); used to size batches.
SENTENCE_WORDS = 7.8
SILENCE_DB = -45.0  # below this level relative to a sentence's peak counts as silence when trimming
T = TypeVar("T")
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")
# What soundfile raises for a bad file (LibsndfileError is a RuntimeError; odd headers give others).
_SF_ERRORS = (RuntimeError, TypeError, ValueError, OSError, EOFError)


@dataclass(frozen=True)
class Speaker:
    """One synthetic espeak-ng voice.

    Attributes:
        speaker_id: stable, filename-safe name, e.g. ``"en-us+f3-p55-s160"``.
        voice: espeak-ng language voice, e.g. ``"en-us"``.
        variant: espeak-ng voice variant, e.g. ``"f3"`` (see ``espeak-ng --voices=variant``).
        pitch: espeak-ng ``-p`` base pitch, 0-99.
        speed: espeak-ng ``-s`` speaking rate, words per minute.
    """

    speaker_id: str
    voice: str
    variant: str
    pitch: int
    speed: int

    @classmethod
    def of(cls, voice: str, variant: str, pitch: int, speed: int) -> Speaker:
        """Build a speaker whose id is derived from its settings."""
        return cls(f"{voice}+{variant}-p{pitch}-s{speed}", voice, variant, int(pitch), int(speed))


def _run_espeak(args: list[str], text: str | None = None) -> subprocess.CompletedProcess:
    """Run espeak-ng with ``args`` (text on stdin, so a text starting with '-' is not an option)."""
    try:
        return subprocess.run(
            [ESPEAK, *args], input=None if text is None else text.encode("utf-8"),
            capture_output=True, check=False, timeout=120,
        )  # fmt: skip
    except FileNotFoundError:
        raise RuntimeError(INSTALL_HINT) from None


@lru_cache(maxsize=1)
def available_voices() -> tuple[str, ...]:
    """The entries of :data:`ENGLISH_VOICES` this espeak-ng install can speak, in that order."""
    out = _run_espeak(["--voices=en"]).stdout.decode("utf-8", "replace")
    # Columns: Pty Language Age/Gender VoiceName File ...; "mb/..." files need MBROLA, often absent.
    have = {f[1] for f in (line.split() for line in out.splitlines()[1:])
            if len(f) >= 5 and not f[4].startswith("mb/")}  # fmt: skip
    return tuple(v for v in ENGLISH_VOICES if v in have)


@lru_cache(maxsize=1)
def variant_folder() -> Path:
    """espeak-ng's folder of voice variant files (``<data>/voices/!v``)."""
    m = re.search(r"Data at:\s*(\S+)", _run_espeak(["--version"]).stdout.decode("utf-8", "replace"))
    folder = Path(m.group(1)) / "voices" / "!v" if m else None
    if folder is None or not folder.is_dir():
        raise RuntimeError(f"cannot find espeak-ng's voice variants (looked in {folder})")
    return folder


@lru_cache(maxsize=1)
def available_variants() -> frozenset[str]:
    """Names of all voice variants installed (the files in :func:`variant_folder`)."""
    # `--voices=variant` prints names with spaces in one column; the folder is unambiguous.
    return frozenset(p.name for p in variant_folder().iterdir() if p.is_file())


def make_speakers(n: int, seed: int) -> list[Speaker]:
    """``n`` distinct speakers, deterministic for a given ``seed`` and espeak-ng install.

    Every (accent, variant) pair is used once, in a seeded order, before any is reused, so a small
    ``n`` still spans accents and variants; pitch and speed are drawn uniformly from
    :data:`PITCH_RANGE` and :data:`SPEED_RANGE` (words per minute).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    variants = [v for v in HUMAN_VARIANTS if v in available_variants()]
    grid = [(voice, var) for voice in available_voices() for var in variants]
    if not grid:
        raise RuntimeError("espeak-ng has none of the English voices or variants this module uses")
    n_pitch, n_speed = PITCH_RANGE[1] - PITCH_RANGE[0] + 1, SPEED_RANGE[1] - SPEED_RANGE[0] + 1
    capacity = len(grid) * n_pitch * n_speed
    if n > capacity // 2:  # keep the rejection loop below short
        raise ValueError(f"at most {capacity // 2} distinct speakers can be made, asked for {n}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(grid))
    speakers: dict[str, Speaker] = {}
    while len(speakers) < n:
        voice, variant = grid[order[len(speakers) % len(grid)]]
        pitch = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
        speed = int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1))
        spk = Speaker.of(voice, variant, pitch, speed)
        speakers.setdefault(spk.speaker_id, spk)  # a rare duplicate just draws again
    return list(speakers.values())


def _words(text: str) -> tuple[str, ...]:
    """Split a '|'-separated word list (entries may contain spaces)."""
    return tuple(w.strip() for w in text.split("|") if w.strip())


NAMES = _words(
    "Anna|Ben|Clara|David|Emma|Frank|Grace|Henry|Iris|Jack|Kate|Leo|Maria|Nathan|Olivia|Peter|"
    "Rachel|Sam|Tina|Victor|Wendy|Oscar|Lucy|Martin|Nora|Paul|Ruth|Simon|Helen|George|Alice|"
    "Thomas|Julia|Daniel|Sarah|Michael|Laura|James|Eva|Hugo"
)
PEOPLE = _words(
    "teacher|farmer|doctor|student|baker|pilot|nurse|painter|neighbor|driver|sailor|writer|"
    "singer|lawyer|child|girl|boy|woman|man|engineer|gardener|waiter|chef|clerk|captain|dancer|"
    "musician|scientist|manager|tourist|stranger|mechanic|librarian|carpenter|fisherman|officer|"
    "judge|poet|banker|plumber|grandmother|uncle|cousin|dog|cat|horse|fox|goat"
)
THINGS = _words(
    "box|letter|basket|ladder|map|window|door|bicycle|boat|lamp|chair|table|book|bottle|blanket|"
    "coat|hat|key|wallet|bag|bucket|clock|mirror|painting|piano|radio|camera|cup|plate|spoon|"
    "kettle|carpet|shelf|bench|fence|gate|wagon|tent|rope|ticket|newspaper|envelope|parcel|"
    "suitcase|umbrella|candle|jar|barrel|statue|guitar|drum|violin|helmet|jacket|scarf|glove|"
    "shoe|ring|necklace|photograph|notebook|pencil|brush|hammer|shovel|apple|pie|cake|sandwich|"
    "orange|melon|onion|egg|teapot|vase|pillow|mattress|toolbox|kite"
)
ADJECTIVES = _words(
    "small|large|old|new|heavy|light|red|blue|green|yellow|brown|black|white|wooden|broken|shiny|"
    "dusty|empty|strange|beautiful|tiny|huge|cheap|expensive|clean|dirty|wet|dry|warm|cold|soft|"
    "hard|round|square|famous|simple|quiet|noisy|bright|dark|narrow|wide|ancient|modern|fragile|"
    "rusty|golden|silver|plastic|lovely|ugly|useful|precious|orange|odd|elegant|awful|enormous"
)
PERSON_ADJECTIVES = _words(
    "old|young|tall|short|tired|happy|busy|clever|friendly|angry|nervous|patient|famous|quiet|"
    "brave|lazy|polite|curious|cheerful|grumpy|sleepy|hungry|careful|lonely"
)
ADVERBS = _words(
    "quickly|slowly|carefully|quietly|gently|suddenly|happily|nervously|proudly|patiently|"
    "eagerly|calmly|secretly|politely|easily|kindly|bravely|clumsily|angrily|silently"
)
# (base, past, third person singular present)
VERBS = tuple(tuple(v.split()) for v in _words(
    "carry carried carries|paint painted paints|find found finds|lose lost loses|buy bought buys|"
    "sell sold sells|open opened opens|close closed closes|clean cleaned cleans|fix fixed fixes|"
    "build built builds|bring brought brings|take took takes|hold held holds|wash washed washes|"
    "watch watched watches|push pushed pushes|pull pulled pulls|move moved moves|hide hid hides|"
    "check checked checks|borrow borrowed borrows|return returned returns|drop dropped drops|"
    "catch caught catches|throw threw throws|keep kept keeps|leave left leaves|send sent sends|"
    "measure measured measures|order ordered orders|carve carved carves|polish polished polishes|"
    "pack packed packs|lift lifted lifts|deliver delivered delivers|describe described describes|"
    "photograph photographed photographs|sketch sketched sketches|load loaded loads|"
    "repair repaired repairs|forget forgot forgets|notice noticed notices|choose chose chooses|"
    "share shared shares|wrap wrapped wraps|fill filled fills|steal stole steals|grab grabbed grabs|"
    "drag dragged drags|weigh weighed weighs|offer offered offers|prepare prepared prepares"
))  # fmt: skip
PLACES = _words(
    "in the kitchen|near the river|at the station|behind the house|on the bridge|in the garden|"
    "at the market|by the lake|under the old tree|in the library|at the harbor|on the roof|"
    "inside the barn|across the street|in the park|at the airport|in the village|on the beach|"
    "in the museum|at the bakery|near the school|in the hallway|on the train|at the hospital|"
    "in the forest|outside the church|at the corner shop|in the basement|upstairs|downstairs|"
    "next to the fountain|in the attic|at the post office|on the balcony|by the window"
)
PAST_TIMES = _words(
    "yesterday|this morning|last night|on Sunday|on Monday|on Tuesday|after lunch|before dinner|"
    "at noon|in the evening|last week|two days ago|at midnight|early in the morning|"
    "during the storm|after the meeting|this afternoon|last summer|in the winter|an hour ago"
)
FUTURE_TIMES = _words(
    "tomorrow|next week|tonight|on Friday|on Saturday|later today|next month|after breakfast|"
    "in the spring|before the holiday|in ten minutes|at the weekend"
)
QUESTION_WORDS = ("Where", "Why", "When", "How")
CONNECTIVES = ("but", "and then", "so", "because", "while", "although")
REPORTERS = _words("said that|thinks that|told me that|heard that|wrote that|believes that|was sure that")


def _pick(rng: np.random.Generator, seq: Sequence[T]) -> T:
    """One element of ``seq``, uniformly (one ``rng.integers`` draw)."""
    return seq[int(rng.integers(len(seq)))]


def _a(word: str) -> str:
    """``word`` with the indefinite article it takes (by sound: "an hour", "a useful")."""
    w = word.lower()
    vowel_sound = (w[0] in "aeiou" and not w.startswith(("use", "uni", "eu", "one"))) or (
        w.startswith(("hour", "honest"))
    )
    return ("an " if vowel_sound else "a ") + word


class SentenceGenerator:
    """Varied, grammatical English sentences from a small built-in grammar and word lists.

    About 430 words (names, people, things, adjectives, adverbs, 50 verbs in three forms, places,
    times) in ten sentence shapes: statements in past, present and future, yes/no and wh-questions,
    descriptions, commands, reported speech and joined clauses. Deterministic given the generator.
    """

    def _np(self, rng: np.random.Generator, people: bool) -> str:
        """A noun phrase: a name (people only), or a determiner, an optional adjective, a noun."""
        if people and rng.random() < 0.3:
            return _pick(rng, NAMES)
        noun = _pick(rng, PEOPLE if people else THINGS)
        if rng.random() < 0.5:
            noun = f"{_pick(rng, PERSON_ADJECTIVES if people else ADJECTIVES)} {noun}"
        det = _pick(rng, ("the", "the", "a", "my", "our", "this", "that", "her", "his"))
        return _a(noun) if det == "a" else f"{det} {noun}"

    def _extras(self, rng: np.random.Generator, times: tuple[str, ...]) -> str:
        """Optional place and time adjuncts (possibly empty), with a leading space."""
        out = f" {_pick(rng, PLACES)}" if rng.random() < 0.6 else ""
        return out + (f" {_pick(rng, times)}" if times and rng.random() < 0.5 else "")

    def _clause(self, rng: np.random.Generator) -> str:
        """A declarative clause in past, present or future, without final punctuation."""
        subj, obj = self._np(rng, True), self._np(rng, False)
        base, past, third = _pick(rng, VERBS)
        tense = int(rng.integers(4))
        if tense == 0:
            return f"{subj} will {base} {obj}{self._extras(rng, FUTURE_TIMES)}"
        if tense == 1:
            adv = _pick(rng, ("usually", "often", "never", "always", "sometimes"))
            return f"{subj} {adv} {third} {obj}{self._extras(rng, ())}"
        adv = f" {_pick(rng, ADVERBS)}" if tense == 2 else ""
        return f"{subj}{adv} {past} {obj}{self._extras(rng, PAST_TIMES)}"

    def _question(self, rng: np.random.Generator) -> str:
        """A yes/no or wh-question, with its question mark."""
        subj, obj = self._np(rng, True), self._np(rng, False)
        base, past, _ = _pick(rng, VERBS)
        kind = int(rng.integers(4))
        if kind == 0:
            return f"Did {subj} {base} {obj}{self._extras(rng, PAST_TIMES)}?"
        if kind == 1:
            return f"Will {subj} {base} {obj}{self._extras(rng, FUTURE_TIMES)}?"
        if kind == 2:
            return f"Who {past} {obj}{self._extras(rng, PAST_TIMES)}?"
        return f"{_pick(rng, QUESTION_WORDS)} did {subj} {base} {obj}?"

    def _other(self, rng: np.random.Generator) -> str:
        """A description, a command, reported speech or two joined clauses, punctuated."""
        kind = int(rng.integers(4))
        if kind == 0:
            where = f" {_pick(rng, PLACES)}" if rng.random() < 0.5 else ""
            when = f" {_pick(rng, PAST_TIMES)}" if rng.random() < 0.5 else ""
            verb = _pick(rng, ("was", "looked", "seemed"))
            return f"{self._np(rng, False)}{where} {verb} {_pick(rng, ADJECTIVES)}{when}."
        if kind == 1:
            base = _pick(rng, VERBS)[0]
            return f"Please {base} {self._np(rng, False)}{self._extras(rng, FUTURE_TIMES)}."
        if kind == 2:
            return f"{_pick(rng, NAMES)} {_pick(rng, REPORTERS)} {self._clause(rng)}."
        return f"{self._clause(rng)}, {_pick(rng, CONNECTIVES)} {self._clause(rng)}."

    def sentence(self, rng: np.random.Generator) -> str:
        """One sentence, capitalised and punctuated (about 4-25 words)."""
        kind = rng.random()
        if kind < 0.4:
            text = self._clause(rng) + "."
        elif kind < 0.65:
            text = self._question(rng)
        else:
            text = self._other(rng)
        return text[0].upper() + text[1:]


def synthesize(text: str, speaker: Speaker) -> np.ndarray:
    """Speak ``text`` with espeak-ng in memory (no temporary files).

    Returns:
        ``(T,)`` float32 mono at 16 kHz (espeak-ng writes 22.05 kHz 16-bit wav; it is resampled),
        including espeak-ng's own ~13 ms of leading and ~0.2-0.5 s of trailing silence.
    Raises:
        RuntimeError: espeak-ng is missing (with how to install it), fails (with its stderr), or the
            speaker's variant is not installed (espeak-ng would silently use its default voice).
    """
    if not text.strip():
        raise ValueError("text to synthesize is empty")
    return _espeak_wav(text, speaker, ssml=False)


def _espeak_wav(text: str, speaker: Speaker, ssml: bool) -> np.ndarray:
    """Run espeak-ng for ``speaker`` on ``text`` (SSML markup if ``ssml``); 16 kHz float32."""
    if speaker.variant not in available_variants():
        raise RuntimeError(f"espeak-ng has no voice variant {speaker.variant!r} ({speaker})")
    args = ["-v", f"{speaker.voice}+{speaker.variant}", "-p", str(speaker.pitch),
            "-s", str(speaker.speed), "--stdout", *(["-m"] if ssml else [])]  # fmt: skip
    proc = _run_espeak(args, text)
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or len(proc.stdout) <= 44:  # 44 bytes = a wav header and no samples
        raise RuntimeError(f"espeak-ng failed (exit {proc.returncode}) for {speaker}: {stderr}")
    try:
        # espeak-ng streams the wav, so its header's sizes are 0x7fff...; libsndfile copes.
        return load_audio(f"espeak-ng:{speaker.speaker_id}", data=proc.stdout)
    except BadInput as e:
        msg = f"espeak-ng output unreadable for {speaker}: {e.reason}; {stderr}"
        raise RuntimeError(msg) from e


def _synthesize_many(texts: list[str], speaker: Speaker) -> list[np.ndarray]:
    """Each of ``texts`` spoken by ``speaker``, trimmed of silence, from one espeak-ng run.

    espeak-ng spends ~12 ms starting (it scans every voice file), about as long as it takes to
    speak a sentence, so a clip's sentences are spoken in one run, separated by SSML breaks of
    :data:`BREAK_S`, and cut apart at silences longer than :data:`SPLIT_S` (no sentence of
    :class:`SentenceGenerator` pauses that long). Falls back to one run per text if the cut does
    not give one piece per text.
    """
    ssml = f' <break time="{round(BREAK_S * 1000)}ms"/> '.join(html.escape(t, quote=False) for t in texts)
    x = _trim(_espeak_wav(ssml, speaker, ssml=True))
    # A break is exact zeros; -60 dB re the peak also tolerates a variant's echo tail.
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    quiet = np.r_[False, np.abs(x) <= peak * 1e-3, False]
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))  # alternating run starts and ends
    starts, ends = edges[::2], edges[1::2]
    long_run = ends - starts >= SPLIT_S * SAMPLE_RATE  # vectorised: zero crossings give many runs
    if int(long_run.sum()) != len(texts) - 1:
        return [_trim(synthesize(t, speaker)) for t in texts]
    bounds = np.r_[0, np.c_[starts[long_run], ends[long_run]].ravel(), x.size]
    return [_trim(x[a:b]) for a, b in zip(bounds[::2], bounds[1::2], strict=True)]


def _trim(x: np.ndarray) -> np.ndarray:
    """``x`` without leading and trailing silence (:data:`SILENCE_DB` below its peak)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    loud = np.flatnonzero(np.abs(x) > peak * 10 ** (SILENCE_DB / 20))
    return x[loud[0] : loud[-1] + 1] if peak > 0 else x[:0]


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` samples of ``x``, zero-padded at the end if shorter; float32."""
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, x.size)] = x[:n]
    return out


def _n_samples(length_s: float) -> int:
    """Number of 16 kHz samples in ``length_s`` seconds (must be >= 0)."""
    if not length_s >= 0:
        raise ValueError(f"length_s must be >= 0 seconds, got {length_s}")
    return round(length_s * SAMPLE_RATE)


def espeak_clip(
    speaker: Speaker,
    rng: np.random.Generator,
    length_s: float,
    sentences: SentenceGenerator | None = None,
) -> tuple[np.ndarray, str]:
    """One clip of ``round(length_s * 16000)`` samples of ``speaker`` reading random sentences.

    Sentences are synthesized, trimmed of silence and joined with :data:`PAUSE_S` (0.2 s) pauses
    until the clip is full, so it starts with speech; the last sentence is usually cut off.
    Returns:
        (float32 audio at 16 kHz, the sentences that are at least partly in the clip, space-joined).
    """
    n = _n_samples(length_s)
    gen = sentences if sentences is not None else SentenceGenerator()
    pause = np.zeros(round(PAUSE_S * SAMPLE_RATE), dtype=np.float32)
    pieces: list[np.ndarray] = []
    texts: list[str] = []
    filled = 0
    for _ in range(1000):  # bounded: a voice that yields only silence must not loop forever
        if filled >= n:
            break
        batch = [gen.sentence(rng) for _ in range(_batch_size((n - filled) / SAMPLE_RATE, speaker))]
        for text, speech in zip(batch, _synthesize_many(batch, speaker), strict=True):
            if filled >= n:
                break  # sentences left over in the batch are not heard
            if speech.size == 0:
                continue
            if pieces:
                pieces.append(pause)
                filled += pause.size
                if filled >= n:  # the pause already fills the clip: the next sentence is not heard
                    break
            pieces.append(speech)
            texts.append(text)
            filled += speech.size
    audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return _fit(audio, n), " ".join(texts)


def _batch_size(remaining_s: float, speaker: Speaker) -> int:
    """How many sentences to speak in one espeak-ng run to fill ``remaining_s`` seconds.

    One more than the average needs: an unheard sentence costs ~1 ms, a second run ~12 ms.
    """
    sentence_s = SENTENCE_WORDS * 60.0 / speaker.speed + PAUSE_S
    return int(np.ceil(remaining_s / sentence_s)) + 1


def _safe_name(name: str) -> str:
    """``name`` with runs of characters outside [A-Za-z0-9._+-] replaced by '_'."""
    return _SAFE.sub("_", name).strip("._") or "unnamed"


def _probe(path: Path) -> tuple[int, int] | str:
    """(frames, sample rate in Hz) of an audio file from its header, or why it is unusable."""
    try:
        info = sf.info(str(path))
    except _SF_ERRORS as e:
        return f"unreadable audio ({type(e).__name__}: {e})"
    if info.frames <= 0:
        return "zero-length audio"
    if not MIN_SAMPLE_RATE <= info.samplerate <= MAX_SAMPLE_RATE:
        return f"unsupported sample rate {info.samplerate} Hz"
    return int(info.frames), int(info.samplerate)


@dataclass(frozen=True)
class _Entry:
    path: Path
    speaker_id: str
    frames: int  # at the file's own rate
    sr: int  # Hz


class FolderSpeech:
    """Dry speech from a folder of real recordings (``--speech-dir``).

    Every ``.wav``/``.flac`` below ``root`` (case-insensitive, recursive, in sorted path order), of
    any sample rate, mono or multichannel (downmixed). A file's speaker is its parent folder's name
    (made filename-safe), or ``spk-<stem>`` for files directly in ``root``. Indexing reads headers
    only; files that are unreadable or empty are skipped and listed in :attr:`bad` as
    ``(path, reason)``. NaN/Inf samples are found when a clip is read (``BadInput`` naming the file).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise BadInput(str(self.root), "speech folder does not exist or is not a folder")
        self.bad: list[tuple[str, str]] = []
        self._entries: list[_Entry] = []
        paths = sorted(p for p in self.root.rglob("*")
                       if p.suffix.lower() in (".wav", ".flac") and p.is_file())  # fmt: skip
        for path in paths:
            probed = _probe(path)
            if isinstance(probed, str):
                self.bad.append((str(path), probed))
                continue
            parent = path.parent.name if path.parent != self.root else f"spk-{path.stem}"
            self._entries.append(_Entry(path, _safe_name(parent), *probed))
        if not self._entries:
            raise BadInput(str(self.root), f"no usable .wav/.flac files ({len(self.bad)} unusable)")

    def __len__(self) -> int:
        """Number of usable files."""
        return len(self._entries)

    def speakers(self) -> list[str]:
        """Distinct speaker ids, sorted."""
        return sorted({e.speaker_id for e in self._entries})

    def clip(self, index: int, rng: np.random.Generator, length_s: float) -> tuple[np.ndarray, str, str]:
        """A random crop of file ``index % len(self)``.

        Only the cropped part (plus a 50 ms margin for the resampling filter) is decoded, so long
        recordings are cheap; the result equals cropping the whole file resampled. Always draws
        exactly one ``rng.random()``, whatever the file length.
        Returns:
            (float32 audio of ``round(length_s * 16000)`` samples at 16 kHz, zero-padded at the
            end if the file is shorter; speaker id; source path).
        Raises:
            BadInput: the file became unreadable or the read part holds NaN/Inf samples.
        """
        n = _n_samples(length_s)
        e = self._entries[index % len(self._entries)]
        total = int(np.ceil(e.frames * SAMPLE_RATE / e.sr))  # file length at 16 kHz
        u = rng.random()
        start = int(u * (total - n + 1)) if total > n else 0  # in 16 kHz samples
        # Decode from a whole polyphase block (blk_in input = blk_out output samples) so that the
        # crop is sample-exact with resampling the whole file, plus a margin for the filter.
        g = gcd(e.sr, SAMPLE_RATE)
        blk_in, blk_out = e.sr // g, SAMPLE_RATE // g
        margin = SAMPLE_RATE // 20  # 50 ms, far more than resample_poly's filter half-length
        first = max(0, start - margin) // blk_out
        lo = first * blk_in
        hi = min(e.frames, int(np.ceil((start + n + margin) * e.sr / SAMPLE_RATE)) + 1)
        try:
            x, _ = sf.read(str(e.path), start=lo, stop=hi, dtype="float32", always_2d=False)
        except _SF_ERRORS as err:  # e.g. the file changed since it was indexed
            raise BadInput(str(e.path), f"unreadable audio ({type(err).__name__}: {err})") from None
        y = prepare_audio(x, e.sr, str(e.path))
        return _fit(y[start - first * blk_out :], n), e.speaker_id, str(e.path)
