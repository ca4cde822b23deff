"""Pseudo-random numbers from explicit keys, in the JAX style: no global state.

A :class:`Key` names an infinite stream of 64-bit words. Every sampling function
reads its key's stream from the start, so the same key always gives the same
numbers, and drawing twice from one key gives the same numbers twice: derive
fresh keys with :func:`split` or :func:`fold_in` instead of reusing one.

The generator is counter-based: word block ``i`` of a stream is the keyed
BLAKE2b hash of ``i``. Derived keys are hashes too, each kind under its own
BLAKE2b personalisation, so a key's children, its folded keys and its own stream
are unrelated. Only integer arithmetic, ``hashlib`` and correctly rounded float
operations are used (the logarithm in :func:`normal` is our own), so the numbers
are bit-for-bit the same on every platform and Python version.

>>> k = key(0)
>>> k_init, k_data = split(k)
>>> uniform(k_init, 3) == uniform(k_init, 3)
True
>>> sorted(permutation(k_data, 5))
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "Key",
    "bernoulli",
    "bits",
    "fold_in",
    "key",
    "normal",
    "permutation",
    "randint",
    "split",
    "uniform",
]

_KEY_BITS = 128
_KEY_BYTES = _KEY_BITS // 8
_WORD_BITS = 64
_WORDS_PER_BLOCK = 8
_BLOCK = struct.Struct("<8Q")  # one 64-byte digest as eight little-endian words
_UNIT = 2.0**-53  # spacing of the 53-bit grid on [0, 1)

# BLAKE2b personalisations (at most 16 bytes): one domain per kind of derivation.
_PERSON_SEED = b"fnn.random.seed"
_PERSON_SPLIT = b"fnn.random.split"
_PERSON_FOLD = b"fnn.random.fold"
_PERSON_BITS = b"fnn.random.bits"


@dataclass(frozen=True, slots=True)
class Key:
    """An immutable, hashable pseudo-random key: a 128-bit integer.

    Make one with :func:`key`, derive more with :func:`split` and :func:`fold_in`.
    """

    data: int

    def __post_init__(self) -> None:
        if isinstance(self.data, bool) or not isinstance(self.data, int):
            raise TypeError(f"Key data must be an int, got {type(self.data).__name__}")
        if not 0 <= self.data < 1 << _KEY_BITS:
            raise ValueError(f"Key data must be in [0, 2**{_KEY_BITS}), got {self.data}")


# -- argument checks -------------------------------------------------------------


def _check_key(k: object) -> None:
    if not isinstance(k, Key):
        raise TypeError(
            f"expected a functional_nn.random.Key, got {type(k).__name__}; "
            "make one with functional_nn.random.key(seed)"
        )


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return value


def _check_count(n: object, name: str = "n") -> int:
    count = _check_int(n, name)
    if count < 0:
        raise ValueError(f"{name} must be >= 0, got {count}")
    return count


def _check_real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {result}")
    return result


# -- key derivation --------------------------------------------------------------


def _int_bytes(value: int) -> bytes:
    """An injective byte encoding of any int: a sign byte, then the magnitude."""
    magnitude = abs(value)
    sign = b"\x01" if value < 0 else b"\x00"
    return sign + magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little")


def _key_bytes(k: Key) -> bytes:
    return k.data.to_bytes(_KEY_BYTES, "little")


def _derive(parent: Key, person: bytes, message: bytes) -> Key:
    digest = hashlib.blake2b(message, digest_size=_KEY_BYTES, key=_key_bytes(parent), person=person).digest()
    return Key(int.from_bytes(digest, "little"))


def key(seed: int) -> Key:
    """Make a key from an integer seed (any size, negative allowed).

    >>> key(42) == key(42), key(42) == key(43)
    (True, False)
    """
    seed = _check_int(seed, "seed")
    digest = hashlib.blake2b(_int_bytes(seed), digest_size=_KEY_BYTES, person=_PERSON_SEED)
    return Key(int.from_bytes(digest.digest(), "little"))


def split(key: Key, num: int = 2) -> tuple[Key, ...]:
    """Derive ``num`` new keys from ``key``; they, and ``key``'s own stream, are independent.

    >>> a, b = split(key(0))
    >>> a != b
    True
    """
    _check_key(key)
    count = _check_count(num, "num")
    return tuple(_derive(key, _PERSON_SPLIT, i.to_bytes(8, "little")) for i in range(count))


def fold_in(key: Key, data: int) -> Key:
    """Derive a new key from ``key`` and an integer, e.g. a step or example index.

    >>> fold_in(key(0), 1) == fold_in(key(0), 1) != fold_in(key(0), 2)
    True
    """
    _check_key(key)
    value = _check_int(data, "data")
    return _derive(key, _PERSON_FOLD, _int_bytes(value))


# -- the word stream -------------------------------------------------------------


def _block_hasher(k: Key) -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=64, key=_key_bytes(k), person=_PERSON_BITS)


def _word_list(k: Key, n: int) -> list[int]:
    """The first ``n`` words of ``k``'s stream."""
    base = _block_hasher(k)
    words: list[int] = []
    for counter in range((n + _WORDS_PER_BLOCK - 1) // _WORDS_PER_BLOCK):
        block = base.copy()
        block.update(counter.to_bytes(8, "little"))
        words.extend(_BLOCK.unpack(block.digest()))
    del words[n:]
    return words


def _words(k: Key) -> Iterator[int]:
    """``k``'s whole stream, lazily; begins with the same words as ``_word_list``."""
    base = _block_hasher(k)
    counter = 0
    while True:
        block = base.copy()
        block.update(counter.to_bytes(8, "little"))
        yield from _BLOCK.unpack(block.digest())
        counter += 1


def _below(words: Iterator[int], bound: int) -> int:
    """An unbiased integer in ``[0, bound)``: rejection keeps only whole copies of the range."""
    num_words = max(1, ((bound - 1).bit_length() + _WORD_BITS - 1) // _WORD_BITS)
    span = 1 << (_WORD_BITS * num_words)
    limit = span - span % bound
    while True:
        x = 0
        for _ in range(num_words):
            x = (x << _WORD_BITS) | next(words)
        if x < limit:
            return x % bound


def bits(key: Key, n: int) -> tuple[int, ...]:
    """The first ``n`` raw 64-bit words of ``key``'s stream, as ints in ``[0, 2**64)``."""
    _check_key(key)
    return tuple(_word_list(key, _check_count(n)))


# -- distributions ---------------------------------------------------------------


def uniform(key: Key, n: int, low: float = 0.0, high: float = 1.0) -> tuple[float, ...]:
    """``n`` floats uniform on ``[low, high)``, from a 53-bit grid on ``[0, 1)``.

    >>> all(2.0 <= x < 3.0 for x in uniform(key(0), 100, 2.0, 3.0))
    True
    """
    _check_key(key)
    count = _check_count(n)
    lo = _check_real(low, "low")
    hi = _check_real(high, "high")
    if not lo < hi:
        raise ValueError(f"uniform needs low < high, got low={lo}, high={hi}")
    span = hi - lo
    if not math.isfinite(span):
        raise ValueError(f"high - low overflows: low={lo}, high={hi}")
    # low + span * u can round up to high when span is tiny relative to low.
    top = math.nextafter(hi, lo)
    return tuple(min(lo + span * ((w >> 11) * _UNIT), top) for w in _word_list(key, count))


_LN2 = 0.6931471805599453
_SQRT_HALF = 0.7071067811865476
_ATANH_COEFFS = tuple(1.0 / k for k in range(23, 1, -2))  # 1/23, 1/21, ..., 1/3


def _log(x: float) -> float:
    """Natural log of a positive finite float, from basic arithmetic only.

    ``math.log`` comes from the platform's C library and may differ in the last
    bit between platforms; this one is the same everywhere (error below 2 ulp).
    """
    mantissa, exponent = math.frexp(x)  # exact: x = mantissa * 2**exponent
    if mantissa < _SQRT_HALF:
        mantissa *= 2.0
        exponent -= 1
    # log(m) = 2 atanh(z) with |z| <= 0.172 for m in [sqrt(1/2), sqrt(2)).
    z = (mantissa - 1.0) / (mantissa + 1.0)
    z2 = z * z
    poly = 0.0
    for c in _ATANH_COEFFS:
        poly = poly * z2 + c
    return exponent * _LN2 + 2.0 * (z + z * z2 * poly)


def normal(key: Key, n: int, mean: float = 0.0, std: float = 1.0) -> tuple[float, ...]:
    """``n`` normal floats with the given mean and standard deviation.

    Marsaglia's polar form of Box-Muller: pairs of uniforms on ``(-1, 1)`` are
    kept when inside the unit disc and not at its centre, so ``log(0)`` never
    happens; each kept pair gives two independent normals.

    >>> len(normal(key(0), 5, mean=1.0, std=0.1))
    5
    """
    _check_key(key)
    count = _check_count(n)
    mu = _check_real(mean, "mean")
    sigma = _check_real(std, "std")
    if sigma < 0.0:
        raise ValueError(f"std must be >= 0, got {sigma}")
    words = _words(key)
    out: list[float] = []
    while len(out) < count:
        # Two 53-bit uniforms on [-1, 1): 2 * u - 1 is exact.
        u = (next(words) >> 11) * (2.0 * _UNIT) - 1.0
        v = (next(words) >> 11) * (2.0 * _UNIT) - 1.0
        s = u * u + v * v
        if s >= 1.0 or s == 0.0:
            continue
        factor = math.sqrt(-2.0 * _log(s) / s)  # sqrt is correctly rounded everywhere
        out.append(mu + sigma * (u * factor))
        out.append(mu + sigma * (v * factor))
    del out[count:]
    return tuple(out)


def randint(key: Key, n: int, low: int, high: int) -> tuple[int, ...]:
    """``n`` integers uniform on ``[low, high)``, exactly unbiased (rejection sampling).

    >>> all(0 <= d < 6 for d in randint(key(0), 50, 0, 6))
    True
    """
    _check_key(key)
    count = _check_count(n)
    lo = _check_int(low, "low")
    hi = _check_int(high, "high")
    if not lo < hi:
        raise ValueError(f"randint needs low < high, got low={lo}, high={hi}")
    words = _words(key)
    bound = hi - lo
    return tuple(lo + _below(words, bound) for _ in range(count))


def permutation(key: Key, n: int) -> tuple[int, ...]:
    """A uniformly random permutation of ``range(n)`` (unbiased Fisher-Yates).

    >>> sorted(permutation(key(1), 4))
    [0, 1, 2, 3]
    """
    _check_key(key)
    count = _check_count(n)
    words = _words(key)
    order = list(range(count))
    for i in range(count - 1, 0, -1):
        j = _below(words, i + 1)
        order[i], order[j] = order[j], order[i]
    return tuple(order)


def bernoulli(key: Key, n: int, p: float = 0.5) -> tuple[bool, ...]:
    """``n`` booleans, each ``True`` with probability ``p`` (exactly never for 0, always for 1).

    The arguments come in the order of :func:`uniform` and :func:`normal`: the key, the
    count, then the distribution's parameter. Entry ``i`` is ``uniform(key, n)[i] < p``.

    >>> bernoulli(key(0), 3, 1.0)
    (True, True, True)
    """
    _check_key(key)
    count = _check_count(n)
    prob = _check_real(p, "p")
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {prob}")
    return tuple((w >> 11) * _UNIT < prob for w in _word_list(key, count))
