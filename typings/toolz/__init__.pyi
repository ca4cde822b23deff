# Stubs for toolz 1.2 (toolz ships no type information); see typings/README.md.
#
# Written from the run-time signatures (inspect.signature) and behaviour of toolz 1.2.
# Where toolz accepts either a function or an index/key (groupby, countby, reduceby,
# pluck, get), the function form is typed exactly; the index form is typed as far as
# the container allows. Where a result's type truly cannot be known (get_in, the
# nested results of assoc_in/update_in) it is ``object``, never ``Any``.
# Submodules (toolz.curried, toolz.itertoolz, ...) have no stubs: import from toolz.

from builtins import filter as filter
from builtins import map as map
from builtins import sorted as sorted
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from functools import partial as partial
from functools import reduce as reduce
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from _typeshed import SupportsRichComparison, SupportsRichComparisonT
from typing_extensions import Self, TypeIs

__all__ = [
    "accumulate",
    "assoc",
    "assoc_in",
    "complement",
    "compose",
    "compose_left",
    "concat",
    "concatv",
    "cons",
    "count",
    "countby",
    "curry",
    "dissoc",
    "do",
    "drop",
    "filter",
    "first",
    "frequencies",
    "get",
    "get_in",
    "groupby",
    "identity",
    "interleave",
    "interpose",
    "isdistinct",
    "isiterable",
    "itemfilter",
    "itemmap",
    "iterate",
    "juxt",
    "keyfilter",
    "keymap",
    "last",
    "map",
    "mapcat",
    "memoize",
    "merge",
    "merge_with",
    "nth",
    "partial",
    "partition",
    "partition_all",
    "peek",
    "peekn",
    "pipe",
    "pluck",
    "reduce",
    "reduceby",
    "remove",
    "second",
    "sliding_window",
    "sorted",
    "tail",
    "take",
    "take_nth",
    "topk",
    "unique",
    "update_in",
    "valfilter",
    "valmap",
]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_K = TypeVar("_K")
_K2 = TypeVar("_K2")
_V = TypeVar("_V")
_V2 = TypeVar("_V2")
_D = TypeVar("_D")
_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)
_A = TypeVar("_A")
_B = TypeVar("_B")
_C = TypeVar("_C")
_E = TypeVar("_E")
_F = TypeVar("_F")
_G = TypeVar("_G")
_H = TypeVar("_H")
_X = TypeVar("_X")
_TupleT_co = TypeVar("_TupleT_co", covariant=True, bound=tuple[object, ...])

# A non-callable ``key`` is an index into each item (a sequence index or mapping key),
# or a list of them.
_Index = int | str | list[int] | list[str]

# ------------------------------------------------------------------------ functoolz

def identity(x: _T) -> _T: ...
@overload
def pipe(data: _A) -> _A: ...
@overload
def pipe(data: _A, f1: Callable[[_A], _B], /) -> _B: ...
@overload
def pipe(data: _A, f1: Callable[[_A], _B], f2: Callable[[_B], _C], /) -> _C: ...
@overload
def pipe(
    data: _A, f1: Callable[[_A], _B], f2: Callable[[_B], _C], f3: Callable[[_C], _D], /
) -> _D: ...
@overload
def pipe(
    data: _A,
    f1: Callable[[_A], _B],
    f2: Callable[[_B], _C],
    f3: Callable[[_C], _D],
    f4: Callable[[_D], _E],
    /,
) -> _E: ...
@overload
def pipe(
    data: _A,
    f1: Callable[[_A], _B],
    f2: Callable[[_B], _C],
    f3: Callable[[_C], _D],
    f4: Callable[[_D], _E],
    f5: Callable[[_E], _F],
    /,
) -> _F: ...
@overload
def pipe(
    data: _A,
    f1: Callable[[_A], _B],
    f2: Callable[[_B], _C],
    f3: Callable[[_C], _D],
    f4: Callable[[_D], _E],
    f5: Callable[[_E], _F],
    f6: Callable[[_F], _G],
    /,
) -> _G: ...
@overload
def pipe(
    data: _A,
    f1: Callable[[_A], _B],
    f2: Callable[[_B], _C],
    f3: Callable[[_C], _D],
    f4: Callable[[_D], _E],
    f5: Callable[[_E], _F],
    f6: Callable[[_F], _G],
    f7: Callable[[_G], _H],
    /,
) -> _H: ...
# Eight or more functions: no longer tracked. (Not a catch-all, so that a shorter
# pipe whose types do not line up is an error rather than an ``object``.)
@overload
def pipe(
    data: object,
    f1: Callable[[Any], object],
    f2: Callable[[Any], object],
    f3: Callable[[Any], object],
    f4: Callable[[Any], object],
    f5: Callable[[Any], object],
    f6: Callable[[Any], object],
    f7: Callable[[Any], object],
    f8: Callable[[Any], object],
    /,
    *funcs: Callable[[Any], object],
) -> object: ...

# compose(f, g, h)(x) == f(g(h(x))): the last function takes the arguments.
@overload
def compose() -> Callable[[_T], _T]: ...
@overload
def compose(f1: Callable[_P, _R], /) -> Callable[_P, _R]: ...
@overload
def compose(f2: Callable[[_A], _R], f1: Callable[_P, _A], /) -> Callable[_P, _R]: ...
@overload
def compose(
    f3: Callable[[_B], _R], f2: Callable[[_A], _B], f1: Callable[_P, _A], /
) -> Callable[_P, _R]: ...
@overload
def compose(
    f4: Callable[[_C], _R],
    f3: Callable[[_B], _C],
    f2: Callable[[_A], _B],
    f1: Callable[_P, _A],
    /,
) -> Callable[_P, _R]: ...
@overload
def compose(
    f5: Callable[[_D], _R],
    f4: Callable[[_C], _D],
    f3: Callable[[_B], _C],
    f2: Callable[[_A], _B],
    f1: Callable[_P, _A],
    /,
) -> Callable[_P, _R]: ...
@overload
def compose(
    f1: Callable[..., object],
    f2: Callable[..., object],
    f3: Callable[..., object],
    f4: Callable[..., object],
    f5: Callable[..., object],
    f6: Callable[..., object],
    /,
    *funcs: Callable[..., object],
) -> Callable[..., object]: ...

# compose_left(f, g, h)(x) == h(g(f(x))): the first function takes the arguments.
@overload
def compose_left() -> Callable[[_T], _T]: ...
@overload
def compose_left(f1: Callable[_P, _R], /) -> Callable[_P, _R]: ...
@overload
def compose_left(f1: Callable[_P, _A], f2: Callable[[_A], _R], /) -> Callable[_P, _R]: ...
@overload
def compose_left(
    f1: Callable[_P, _A], f2: Callable[[_A], _B], f3: Callable[[_B], _R], /
) -> Callable[_P, _R]: ...
@overload
def compose_left(
    f1: Callable[_P, _A],
    f2: Callable[[_A], _B],
    f3: Callable[[_B], _C],
    f4: Callable[[_C], _R],
    /,
) -> Callable[_P, _R]: ...
@overload
def compose_left(
    f1: Callable[_P, _A],
    f2: Callable[[_A], _B],
    f3: Callable[[_B], _C],
    f4: Callable[[_C], _D],
    f5: Callable[[_D], _R],
    /,
) -> Callable[_P, _R]: ...
@overload
def compose_left(
    f1: Callable[..., object],
    f2: Callable[..., object],
    f3: Callable[..., object],
    f4: Callable[..., object],
    f5: Callable[..., object],
    f6: Callable[..., object],
    /,
    *funcs: Callable[..., object],
) -> Callable[..., object]: ...

class curry(Generic[_R_co]):
    """A curried callable returning ``_R_co`` once it has all its arguments.

    Calling it with too few arguments returns another ``curry`` instead, and which
    of the two happens depends on the wrapped function's arity, which is not
    tracked: ``__call__`` is typed ``_R_co | curry[_R_co]``. Use ``.call`` (no
    currying) or ``.bind`` (always partial) where the result type matters.
    """

    def __init__(self, func: Callable[..., _R_co], /, *args: object, **kwargs: object) -> None: ...
    @property
    def func(self) -> Callable[..., _R_co]: ...
    @property
    def args(self) -> tuple[object, ...]: ...
    @property
    def keywords(self) -> dict[str, object]: ...
    def __call__(self, *args: object, **kwargs: object) -> _R_co | curry[_R_co]: ...
    def call(self, *args: object, **kwargs: object) -> _R_co: ...
    def bind(self, *args: object, **kwargs: object) -> curry[_R_co]: ...
    @overload
    def __get__(self, instance: None, owner: type[object] | None = None) -> Self: ...
    @overload
    def __get__(self, instance: object, owner: type[object] | None = None) -> curry[_R_co]: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

# memoize is itself curried: memoize(f), memoize(f, cache=...), or
# memoize(cache=..., key=...) as a decorator factory. ``key(args, kwargs)`` makes the
# cache key.
@overload
def memoize(
    func: Callable[_P, _R],
    cache: MutableMapping[Any, _R] | None = None,
    key: Callable[[tuple[Any, ...], Mapping[str, Any]], Hashable] | None = None,
) -> Callable[_P, _R]: ...
@overload
def memoize(
    *,
    cache: MutableMapping[Any, Any] | None = None,
    key: Callable[[tuple[Any, ...], Mapping[str, Any]], Hashable] | None = None,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]: ...

class juxt(Generic[_P, _TupleT_co]):
    """``juxt(f, g)(*args) == (f(*args), g(*args))``.

    Typed for up to four functions (or one iterable of functions); one-argument
    functions first, so that their argument types meet, then any shared signature.
    """

    @overload
    def __init__(
        self: juxt[[_X], tuple[_A]],
        f1: Callable[[_X], _A],
        /,
    ) -> None: ...
    @overload
    def __init__(
        self: juxt[[_X], tuple[_A, _B]],
        f1: Callable[[_X], _A],
        f2: Callable[[_X], _B],
        /,
    ) -> None: ...
    @overload
    def __init__(
        self: juxt[[_X], tuple[_A, _B, _C]],
        f1: Callable[[_X], _A],
        f2: Callable[[_X], _B],
        f3: Callable[[_X], _C],
        /,
    ) -> None: ...
    @overload
    def __init__(
        self: juxt[[_X], tuple[_A, _B, _C, _D]],
        f1: Callable[[_X], _A],
        f2: Callable[[_X], _B],
        f3: Callable[[_X], _C],
        f4: Callable[[_X], _D],
        /,
    ) -> None: ...
    @overload
    def __init__(self: juxt[[_X], tuple[_R, ...]], funcs: Iterable[Callable[[_X], _R]], /) -> None: ...
    @overload
    def __init__(
        self: juxt[_P, tuple[_A]],
        f1: Callable[_P, _A],
        /,
    ) -> None: ...
    @overload
    def __init__(
        self: juxt[_P, tuple[_A, _B]],
        f1: Callable[_P, _A],
        f2: Callable[_P, _B],
        /,
    ) -> None: ...
    @overload
    def __init__(
        self: juxt[_P, tuple[_A, _B, _C]],
        f1: Callable[_P, _A],
        f2: Callable[_P, _B],
        f3: Callable[_P, _C],
        /,
    ) -> None: ...
    @overload
    def __init__(
        self: juxt[_P, tuple[_A, _B, _C, _D]],
        f1: Callable[_P, _A],
        f2: Callable[_P, _B],
        f3: Callable[_P, _C],
        f4: Callable[_P, _D],
        /,
    ) -> None: ...
    @overload
    def __init__(self: juxt[_P, tuple[_R, ...]], funcs: Iterable[Callable[_P, _R]], /) -> None: ...
    @overload
    def __init__(
        self: juxt[..., tuple[object, ...]],
        f1: Callable[..., object],
        f2: Callable[..., object],
        f3: Callable[..., object],
        f4: Callable[..., object],
        f5: Callable[..., object],
        /,
        *funcs: Callable[..., object],
    ) -> None: ...
    @property
    def funcs(self) -> tuple[Callable[_P, object], ...]: ...
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _TupleT_co: ...

def complement(func: Callable[_P, object]) -> Callable[_P, bool]: ...
def do(func: Callable[[_T], object], x: _T) -> _T: ...

# ------------------------------------------------------------------------ itertoolz

def first(seq: Iterable[_T]) -> _T: ...
def second(seq: Iterable[_T]) -> _T: ...
def last(seq: Iterable[_T]) -> _T: ...
def nth(n: int, seq: Iterable[_T]) -> _T: ...
def take(n: int, seq: Iterable[_T]) -> Iterator[_T]: ...
def drop(n: int, seq: Iterable[_T]) -> Iterator[_T]: ...
def take_nth(n: int, seq: Iterable[_T]) -> Iterator[_T]: ...

# tail slices anything sliceable (keeping the type of the built-in sequences) and
# collects any other iterable's last items into a tuple, so a general iterable, which
# may be a list at run time, gives a Sequence.
@overload
def tail(n: int, seq: list[_T]) -> list[_T]: ...
@overload
def tail(n: int, seq: tuple[_T, ...]) -> tuple[_T, ...]: ...
@overload
def tail(n: int, seq: str) -> str: ...
@overload
def tail(n: int, seq: Iterable[_T]) -> Sequence[_T]: ...
def remove(predicate: Callable[[_T], object], seq: Iterable[_T]) -> Iterator[_T]: ...
def concat(seqs: Iterable[Iterable[_T]]) -> Iterator[_T]: ...
def concatv(*seqs: Iterable[_T]) -> Iterator[_T]: ...
def mapcat(func: Callable[[_A], Iterable[_T]], seqs: Iterable[_A]) -> Iterator[_T]: ...
def cons(el: _A, seq: Iterable[_T]) -> Iterator[_A | _T]: ...
def interpose(el: _A, seq: Iterable[_T]) -> Iterator[_A | _T]: ...
def interleave(seqs: Iterable[Iterable[_T]]) -> Iterator[_T]: ...

# partition drops a short final group (or pads it with ``pad``); partition_all keeps it.
@overload
def partition(n: Literal[2], seq: Iterable[_T]) -> Iterator[tuple[_T, _T]]: ...
@overload
def partition(n: Literal[3], seq: Iterable[_T]) -> Iterator[tuple[_T, _T, _T]]: ...
@overload
def partition(n: int, seq: Iterable[_T]) -> Iterator[tuple[_T, ...]]: ...
@overload
def partition(n: Literal[2], seq: Iterable[_T], pad: _D) -> Iterator[tuple[_T | _D, _T | _D]]: ...
@overload
def partition(n: int, seq: Iterable[_T], pad: _D) -> Iterator[tuple[_T | _D, ...]]: ...
def partition_all(n: int, seq: Iterable[_T]) -> Iterator[tuple[_T, ...]]: ...
@overload
def sliding_window(n: Literal[2], seq: Iterable[_T]) -> Iterator[tuple[_T, _T]]: ...
@overload
def sliding_window(n: Literal[3], seq: Iterable[_T]) -> Iterator[tuple[_T, _T, _T]]: ...
@overload
def sliding_window(n: int, seq: Iterable[_T]) -> Iterator[tuple[_T, ...]]: ...
@overload
def accumulate(binop: Callable[[_T, _T], _T], seq: Iterable[_T]) -> Iterator[_T]: ...
@overload
def accumulate(binop: Callable[[_A, _T], _A], seq: Iterable[_T], initial: _A) -> Iterator[_A]: ...
@overload
def groupby(key: Callable[[_T], _K], seq: Iterable[_T]) -> dict[_K, list[_T]]: ...
@overload
def groupby(key: _Index, seq: Iterable[_T]) -> dict[object, list[_T]]: ...
def frequencies(seq: Iterable[_T]) -> dict[_T, int]: ...
@overload
def countby(key: Callable[[_T], _K], seq: Iterable[_T]) -> dict[_K, int]: ...
@overload
def countby(key: _Index, seq: Iterable[_T]) -> dict[object, int]: ...

# reduceby: without ``init`` the first item of each group starts the reduction; an
# ``init`` that is callable is called once per group to make the start value.
@overload
def reduceby(
    key: Callable[[_T], _K], binop: Callable[[_T, _T], _T], seq: Iterable[_T]
) -> dict[_K, _T]: ...
@overload
def reduceby(
    key: Callable[[_T], _K],
    binop: Callable[[_A, _T], _A],
    seq: Iterable[_T],
    init: Callable[[], _A],
) -> dict[_K, _A]: ...
@overload
def reduceby(
    key: Callable[[_T], _K], binop: Callable[[_A, _T], _A], seq: Iterable[_T], init: _A
) -> dict[_K, _A]: ...
@overload
def reduceby(key: _Index, binop: Callable[[_T, _T], _T], seq: Iterable[_T]) -> dict[object, _T]: ...
@overload
def reduceby(
    key: _Index, binop: Callable[[_A, _T], _A], seq: Iterable[_T], init: Callable[[], _A]
) -> dict[object, _A]: ...
@overload
def reduceby(
    key: _Index, binop: Callable[[_A, _T], _A], seq: Iterable[_T], init: _A
) -> dict[object, _A]: ...
def unique(seq: Iterable[_T], key: Callable[[_T], Hashable] | None = None) -> Iterator[_T]: ...
def isdistinct(seq: Iterable[Hashable]) -> bool: ...
def isiterable(x: object) -> TypeIs[Iterable[object]]: ...
def iterate(func: Callable[[_T], _T], x: _T) -> Iterator[_T]: ...
def count(seq: Iterable[object]) -> int: ...

# get(i, seq) is seq[i]; get([i, j], seq) is (seq[i], seq[j]); ``default`` replaces
# missing entries.
@overload
def get(ind: list[int], seq: Sequence[_T]) -> tuple[_T, ...]: ...
@overload
def get(ind: list[int], seq: Sequence[_T], default: _D) -> tuple[_T | _D, ...]: ...
@overload
def get(ind: int, seq: Sequence[_T]) -> _T: ...
@overload
def get(ind: int, seq: Sequence[_T], default: _D) -> _T | _D: ...
@overload
def get(ind: list[_K], seq: Mapping[_K, _V]) -> tuple[_V, ...]: ...
@overload
def get(ind: list[_K], seq: Mapping[_K, _V], default: _D) -> tuple[_V | _D, ...]: ...
@overload
def get(ind: _K, seq: Mapping[_K, _V]) -> _V: ...
@overload
def get(ind: _K, seq: Mapping[_K, _V], default: _D) -> _V | _D: ...

# pluck(i, seqs) is (s[i] for s in seqs); pluck([i, j], seqs) gives tuples.
@overload
def pluck(ind: list[int], seqs: Iterable[Sequence[_T]]) -> Iterator[tuple[_T, ...]]: ...
@overload
def pluck(
    ind: list[int], seqs: Iterable[Sequence[_T]], default: _D
) -> Iterator[tuple[_T | _D, ...]]: ...
@overload
def pluck(ind: int, seqs: Iterable[Sequence[_T]]) -> Iterator[_T]: ...
@overload
def pluck(ind: int, seqs: Iterable[Sequence[_T]], default: _D) -> Iterator[_T | _D]: ...
@overload
def pluck(ind: list[_K], seqs: Iterable[Mapping[_K, _V]]) -> Iterator[tuple[_V, ...]]: ...
@overload
def pluck(
    ind: list[_K], seqs: Iterable[Mapping[_K, _V]], default: _D
) -> Iterator[tuple[_V | _D, ...]]: ...
@overload
def pluck(ind: _K, seqs: Iterable[Mapping[_K, _V]]) -> Iterator[_V]: ...
@overload
def pluck(ind: _K, seqs: Iterable[Mapping[_K, _V]], default: _D) -> Iterator[_V | _D]: ...
@overload
def topk(
    k: int, seq: Iterable[SupportsRichComparisonT], key: None = None
) -> tuple[SupportsRichComparisonT, ...]: ...
@overload
def topk(
    k: int, seq: Iterable[_T], key: Callable[[_T], SupportsRichComparison]
) -> tuple[_T, ...]: ...
def peek(seq: Iterable[_T]) -> tuple[_T, Iterator[_T]]: ...
def peekn(n: int, seq: Iterable[_T]) -> tuple[tuple[_T, ...], Iterator[_T]]: ...

# ----------------------------------------------------------------------- dicttoolz
#
# Results are new dicts, or whatever mutable mapping ``factory()`` makes.

@overload
def merge(*dicts: Mapping[_K, _V]) -> dict[_K, _V]: ...
@overload
def merge(
    *dicts: Mapping[_K, _V], factory: Callable[[], MutableMapping[_K, _V]]
) -> MutableMapping[_K, _V]: ...
@overload
def merge(dicts: Iterable[Mapping[_K, _V]], /) -> dict[_K, _V]: ...
@overload
def merge_with(func: Callable[[list[_V]], _R], *dicts: Mapping[_K, _V]) -> dict[_K, _R]: ...
@overload
def merge_with(
    func: Callable[[list[_V]], _R],
    *dicts: Mapping[_K, _V],
    factory: Callable[[], MutableMapping[_K, _R]],
) -> MutableMapping[_K, _R]: ...
@overload
def valmap(func: Callable[[_V], _R], d: Mapping[_K, _V]) -> dict[_K, _R]: ...
@overload
def valmap(
    func: Callable[[_V], _R], d: Mapping[_K, _V], factory: Callable[[], MutableMapping[_K, _R]]
) -> MutableMapping[_K, _R]: ...
@overload
def keymap(func: Callable[[_K], _K2], d: Mapping[_K, _V]) -> dict[_K2, _V]: ...
@overload
def keymap(
    func: Callable[[_K], _K2], d: Mapping[_K, _V], factory: Callable[[], MutableMapping[_K2, _V]]
) -> MutableMapping[_K2, _V]: ...
@overload
def itemmap(
    func: Callable[[tuple[_K, _V]], tuple[_K2, _V2]], d: Mapping[_K, _V]
) -> dict[_K2, _V2]: ...
@overload
def itemmap(
    func: Callable[[tuple[_K, _V]], tuple[_K2, _V2]],
    d: Mapping[_K, _V],
    factory: Callable[[], MutableMapping[_K2, _V2]],
) -> MutableMapping[_K2, _V2]: ...
@overload
def valfilter(predicate: Callable[[_V], object], d: Mapping[_K, _V]) -> dict[_K, _V]: ...
@overload
def valfilter(
    predicate: Callable[[_V], object],
    d: Mapping[_K, _V],
    factory: Callable[[], MutableMapping[_K, _V]],
) -> MutableMapping[_K, _V]: ...
@overload
def keyfilter(predicate: Callable[[_K], object], d: Mapping[_K, _V]) -> dict[_K, _V]: ...
@overload
def keyfilter(
    predicate: Callable[[_K], object],
    d: Mapping[_K, _V],
    factory: Callable[[], MutableMapping[_K, _V]],
) -> MutableMapping[_K, _V]: ...
@overload
def itemfilter(predicate: Callable[[tuple[_K, _V]], object], d: Mapping[_K, _V]) -> dict[_K, _V]: ...
@overload
def itemfilter(
    predicate: Callable[[tuple[_K, _V]], object],
    d: Mapping[_K, _V],
    factory: Callable[[], MutableMapping[_K, _V]],
) -> MutableMapping[_K, _V]: ...
@overload
def assoc(d: Mapping[_K, _V], key: _K2, value: _V2) -> dict[_K | _K2, _V | _V2]: ...
@overload
def assoc(
    d: Mapping[_K, _V],
    key: _K2,
    value: _V2,
    factory: Callable[[], MutableMapping[_K | _K2, _V | _V2]],
) -> MutableMapping[_K | _K2, _V | _V2]: ...
@overload
def dissoc(d: Mapping[_K, _V], *keys: object) -> dict[_K, _V]: ...
@overload
def dissoc(
    d: Mapping[_K, _V], *keys: object, factory: Callable[[], MutableMapping[_K, _V]]
) -> MutableMapping[_K, _V]: ...

# Every key of the path must suit the outer map's key type; the values' types are
# unknowable past the first level.
@overload
def assoc_in(d: Mapping[_K, object], keys: Sequence[_K], value: object) -> dict[_K, object]: ...
@overload
def assoc_in(
    d: Mapping[_K, object],
    keys: Sequence[_K],
    value: object,
    factory: Callable[[], MutableMapping[Any, Any]],
) -> MutableMapping[_K, object]: ...
@overload
def update_in(
    d: Mapping[_K, object],
    keys: Sequence[_K],
    func: Callable[[Any], object],
    default: object = None,
) -> dict[_K, object]: ...
@overload
def update_in(
    d: Mapping[_K, object],
    keys: Sequence[_K],
    func: Callable[[Any], object],
    default: object,
    factory: Callable[[], MutableMapping[Any, Any]],
) -> MutableMapping[_K, object]: ...
@overload
def update_in(
    d: Mapping[_K, object],
    keys: Sequence[_K],
    func: Callable[[Any], object],
    *,
    factory: Callable[[], MutableMapping[Any, Any]],
) -> MutableMapping[_K, object]: ...
def get_in(
    keys: Iterable[object], coll: object, default: object = None, no_default: bool = False
) -> object: ...
