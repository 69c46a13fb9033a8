"""Speech-like test audio synthesized in code (no recorded speech ships in any package here).

A source-filter model of speech, the textbook way vowels are synthesized:
  * voiced source: a glottal pulse train (Rosenberg-like pulse shape) whose F0 follows a
    falling-rising intonation contour (85-260 Hz per talker) with jitter and shimmer;
  * vocal tract: five second-order resonators in cascade at the formants of a vowel
    (Peterson & Barney means for /i e a o u ae er/), the vowel changing every syllable
    with a smooth transition;
  * syllables of 120-300 ms with a raised-cosine envelope, words of 2-5 syllables, unvoiced
    fricative / plosive bursts (band-passed noise) between some syllables;
  * pauses between phrases; background: white / pink noise at 5-40 dB SNR, mains hum,
    or a non-speech distractor (a chord of steady tones, a chirp) in some pauses.
Deterministic for a seed. 16 kHz float32 in [-1, 1].
"""

from __future__ import annotations

import numpy as np

SR = 16000
VOWELS = {  # F1, F2, F3 (Hz), adult male means; scaled per talker
    "i": (270, 2290, 3010), "e": (530, 1840, 2480), "a": (730, 1090, 2440), "o": (570, 840, 2410),
    "u": (300, 870, 2240), "ae": (660, 1720, 2410), "er": (490, 1350, 1690),
}


def _resonators(x: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """Cascade of time-varying 2-pole resonators (formants [T, K] Hz, bandwidths [K] Hz)."""
    from scipy.signal import lfilter

    y = x
    hop = 160  # filters updated every 10 ms
    for k in range(formants.shape[1]):
        out = np.zeros_like(y)
        zi = np.zeros(2)
        for s in range(0, len(y), hop):
            f = formants[s, k]
            r = np.exp(-np.pi * bandwidths[k] / SR)
            a = [1.0, -2 * r * np.cos(2 * np.pi * f / SR), r * r]
            b = [sum(a)]  # unit gain at DC
            out[s : s + hop], zi = lfilter(b, a, y[s : s + hop], zi=zi)
        y = out
    return y


def _glottal(f0: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Glottal flow derivative pulses at the instantaneous F0 [T]."""
    phase = np.cumsum(f0 / SR)
    frac = phase % 1.0
    open_q = 0.6
    pulse = np.where(frac < open_q, np.sin(np.pi * frac / open_q) ** 2, 0.0)
    src = np.diff(pulse, prepend=0.0)
    period = np.floor(phase)
    shimmer = 1 + 0.08 * rng.standard_normal(int(period[-1]) + 2)
    return src * shimmer[period.astype(int)]


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec))
    spec[1:] /= np.sqrt(f[1:])
    x = np.fft.irfft(spec, n)
    return x / (np.std(x) + 1e-12)


def phrase(rng: np.random.Generator, talker_f0: float, scale: float) -> np.ndarray:
    """One phrase of 2-4 words of synthetic syllables."""
    parts = []
    for _ in range(rng.integers(2, 5)):
        for _ in range(rng.integers(2, 6)):
            n = int(SR * rng.uniform(0.12, 0.30))
            if rng.random() < 0.4:  # fricative / plosive onset
                m = int(SR * rng.uniform(0.03, 0.09))
                noise = rng.standard_normal(m)
                from scipy.signal import butter, lfilter

                lo = rng.uniform(2000, 4500)
                b, a = butter(2, [lo / (SR / 2), min(0.95, (lo + 3000) / (SR / 2))], "band")
                parts.append(0.15 * lfilter(b, a, noise) * np.hanning(m))
            t = np.linspace(0, 1, n)
            f0 = talker_f0 * (1 + 0.15 * np.sin(np.pi * t + rng.uniform(-1, 1))) * (1 + 0.01 * rng.standard_normal(n))
            v1, v2 = rng.choice(list(VOWELS), 2)
            w = np.clip(t[:, None] * 1.5, 0, 1)
            form = (1 - w) * np.array(VOWELS[v1]) + w * np.array(VOWELS[v2])
            form = np.concatenate([form * scale, np.tile([3500.0 * scale, 4500.0 * scale], (n, 1))], axis=1)
            voiced = _resonators(_glottal(f0, rng), form, np.array([80.0, 100, 150, 250, 300]))
            env = np.sin(np.pi * t) ** 0.7
            parts.append(voiced * env * rng.uniform(0.6, 1.0))
        parts.append(np.zeros(int(SR * rng.uniform(0.02, 0.12))))  # between words
    x = np.concatenate(parts)
    return x / (np.max(np.abs(x)) + 1e-12)


def clip(seed: int, seconds: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """(audio [seconds * SR] float32, speech mask [same] bool: where a phrase was placed)."""
    rng = np.random.default_rng(seed)
    n = int(SR * seconds)
    x = np.zeros(n)
    mask = np.zeros(n, bool)
    talker = rng.uniform(85, 260)
    scale = 1.0 + 0.35 * (talker - 85) / 175  # higher voices, shorter tracts
    pos = int(SR * rng.uniform(0.3, 1.2))
    while pos < n - SR // 2:
        p = phrase(rng, talker, scale)[: n - pos]
        x[pos : pos + len(p)] += rng.uniform(0.2, 0.8) * p
        mask[pos : pos + len(p)] = True
        pos += len(p) + int(SR * rng.uniform(0.4, 1.5))
    kind = rng.integers(0, 4)
    snr_db = rng.uniform(5, 40)
    level = np.sqrt(np.mean(x[mask] ** 2)) if mask.any() else 0.1
    if kind == 0:
        noise = rng.standard_normal(n)
    elif kind == 1:
        noise = _pink(n, rng)
    elif kind == 2:
        tt = np.arange(n) / SR
        noise = np.sqrt(2) * np.sin(2 * np.pi * rng.choice([50.0, 60.0]) * tt) + 0.3 * rng.standard_normal(n)
    else:  # steady tones and a chirp in the pauses (non-speech that is not noise)
        tt = np.arange(n) / SR
        noise = sum(np.sin(2 * np.pi * f * tt) for f in rng.uniform(200, 1200, 3)) / np.sqrt(1.5)
        noise += np.sin(2 * np.pi * (300 + 400 * tt) * tt)
        noise *= ~mask
    x = x + noise * level / (10 ** (snr_db / 20))
    x = x / max(1.0, np.max(np.abs(x)) / 0.95)
    return x.astype(np.float32), mask
