# The part of Dask's distributed API this project uses, typed (its own signatures are untyped).
from concurrent.futures import Executor
from types import TracebackType
from typing import Any

class Future:
    def result(self, timeout: float | None = None) -> Any: ...

class LocalCluster:
    scheduler_address: str
    def __init__(
        self,
        n_workers: int | None = None,
        threads_per_worker: int | None = None,
        processes: bool | None = None,
        host: str | None = None,
        dashboard_address: str | None = None,
        **kwargs: Any,
    ) -> None: ...
    def close(self, timeout: float | None = None) -> None: ...

class Client:
    def __init__(
        self, address: str | LocalCluster | None = None, timeout: float | str | None = ..., **kwargs: Any
    ) -> None: ...
    def get_executor(self, **kwargs: Any) -> Executor: ...
    def scatter(self, data: Any, broadcast: bool = False, **kwargs: Any) -> Future: ...
    def close(self, timeout: float | None = None) -> None: ...
    def __enter__(self) -> Client: ...
    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...

class KilledWorker(Exception): ...
