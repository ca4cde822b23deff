"""What the checkpoint loader refuses before parsing (non-files, oversized files), what the
parser refuses (duplicate keys, integers too large for a float), and which temporary files
``remove_stale_temporaries`` removes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pyrsistent import PMap, pmap, pvector

import optimizers
from functional_nn.serialization import (
    MAX_CHECKPOINT_BYTES,
    STALE_AFTER_SECONDS,
    CheckpointError,
    Json,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
    write_atomically,
)
from tests.functional_nn.cli_helpers import run_cli

PARAMS: PMap[str, object] = pmap(
    {"layers": pvector([pmap({"weight": pvector([pvector([0.5, -1.0])]), "bias": pvector([0.25])})])}
)


def canonical(value: object) -> bytes:
    """JSON as the writer writes it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def signed(document: dict[str, object]) -> dict[str, object]:
    """``document`` with its checksum recomputed over its payload, as the writer computes it."""
    return {**document, "sha256": hashlib.sha256(canonical(document["payload"])).hexdigest()}


def saved(folder: Path, metadata: dict[str, Json] | None = None) -> Path:
    path = folder / "checkpoint.json"
    opt = optimizers.adam(0.1)
    save_checkpoint(path, PARAMS, opt.init(PARAMS), metadata or {"epoch": 1})
    return path


def document_of(path: Path) -> dict[str, object]:
    document = json.loads(path.read_bytes())
    assert isinstance(document, dict)
    return document


def error_loading(path: str | Path, **options: int) -> str:
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path, **options)  # type: ignore[arg-type]
    return str(caught.value)


# --- what is not a regular file, or too large ---------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused_before_reading() -> None:
    message = error_loading("/dev/zero")
    assert "/dev/zero" in message
    assert "a character device, not a regular file" in message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "checkpoint.json"
    os.mkfifo(fifo)
    assert "a FIFO (named pipe), not a regular file" in error_loading(fifo)


def test_a_folder_is_refused(tmp_path: Path) -> None:
    assert "cannot read" in error_loading(tmp_path)
    assert "a folder, not a regular file" in error_loading(tmp_path)


def test_a_symbolic_link_to_a_checkpoint_loads(tmp_path: Path) -> None:
    link = tmp_path / "latest.json"
    link.symlink_to(saved(tmp_path))
    assert load_checkpoint(link, like=PARAMS).params == PARAMS


def test_a_file_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = saved(tmp_path)
    size = path.stat().st_size
    assert load_checkpoint(path, max_bytes=size).params == PARAMS
    message = error_loading(path, max_bytes=size - 1)
    assert f"{size} bytes, over the limit of {size - 1} bytes" in message
    assert "max_bytes" in message


def test_the_default_limit_holds_for_a_huge_sparse_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with open(path, "wb") as stream:
        stream.truncate(MAX_CHECKPOINT_BYTES + 1)  # sparse: takes no disk space, nor time to make
    assert f"over the limit of {MAX_CHECKPOINT_BYTES} bytes" in error_loading(path)
    assert MAX_CHECKPOINT_BYTES == 256 * 2**20


@pytest.mark.skipif(not os.path.isfile("/proc/self/status"), reason="needs Linux /proc")
def test_a_file_that_reports_no_size_is_still_read_only_up_to_the_limit() -> None:
    assert os.stat("/proc/self/status").st_size == 0
    assert "holds more than 100 bytes, over the limit" in error_loading("/proc/self/status", max_bytes=100)


def test_saving_a_checkpoint_over_the_limit_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="over the limit of 100 bytes"):
        save_checkpoint(tmp_path / "checkpoint.json", PARAMS, max_bytes=100)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("limit", [-1, True, 1.5, "100"])
def test_a_limit_that_is_not_a_count_of_bytes_is_a_value_error(tmp_path: Path, limit: object) -> None:
    path = saved(tmp_path)
    with pytest.raises(ValueError, match="max_bytes must be an int >= 0"):
        load_checkpoint(path, max_bytes=limit)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_bytes must be an int >= 0"):
        save_checkpoint(path, PARAMS, max_bytes=limit)  # type: ignore[arg-type]


# --- duplicate keys -----------------------------------------------------------------------


def test_a_second_payload_is_refused_even_with_a_matching_checksum(tmp_path: Path) -> None:
    path = saved(tmp_path)
    document = document_of(path)
    shown = canonical({"params": {"w": [1.0]}, "opt_state": None, "metadata": {}})
    # A reader of the file sees the first payload; json.loads alone would keep the last.
    text = canonical(document).replace(b'"payload":', b'"payload":' + shown + b',"payload":', 1)
    path.write_bytes(text)
    message = error_loading(path)
    assert "the key 'payload' twice in one object" in message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"bias":', b'"bias":[9.0],"bias":'),  # inside the optimizer state's moments
        (b'"epoch":1', b'"epoch":1,"epoch":2'),  # in the metadata
        (b'"layers.0.bias":', b'"layers.0.bias":[9.0],"layers.0.bias":'),  # a parameter
    ],
)
def test_a_key_twice_at_any_depth_is_refused_by_name(tmp_path: Path, old: bytes, new: bytes) -> None:
    path = saved(tmp_path)
    document = document_of(path)
    payload = canonical(document["payload"]).replace(old, new, 1)
    assert payload != canonical(document["payload"])
    text = canonical(document).replace(canonical(document["payload"]), payload)
    path.write_bytes(text)
    key = old.split(b":")[0].decode()
    assert f"the key '{key[1:-1]}' twice in one object" in error_loading(path)


# --- integers too large for a float -------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        (("metadata", "epoch"), "['payload']['metadata']['epoch']"),
        (("metadata", "history"), "['payload']['metadata']['history']"),
        (("opt_state", "step"), "['payload']['opt_state']['step']"),
        (("params", "layers.0.bias"), "['payload']['params']['layers.0.bias']"),
    ],
)
@pytest.mark.parametrize("number", [10**400, -(10**400), 2 * 10**308], ids=["1e400", "-1e400", "2e308"])
def test_an_integer_too_large_for_a_float_is_a_checkpoint_error_anywhere(
    tmp_path: Path, where: tuple[str, str], fragment: str, number: int
) -> None:
    path = saved(tmp_path)
    document = document_of(path)
    payload = document["payload"]
    assert isinstance(payload, dict)
    section, key = where
    value: object = [1.0, {"x": number}] if key == "history" else number
    edited = {**payload, section: {**payload[section], key: value}}
    path.write_bytes(canonical(signed({**document, "payload": edited})))
    for like in (None, PARAMS):
        with pytest.raises(CheckpointError) as caught:
            load_checkpoint(path, like=like)
        assert fragment in str(caught.value)
        assert "too large for a float" in str(caught.value)


def test_the_largest_float_sized_integer_still_loads(tmp_path: Path) -> None:
    largest = int(sys.float_info.max)
    path = saved(tmp_path, {"big": largest, "small": -largest})
    assert load_checkpoint(path).metadata == {"big": largest, "small": -largest}


def test_saving_an_integer_too_large_for_a_float_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"metadata\['n'\]\[0\] is an integer too large for a float"):
        save_checkpoint(tmp_path / "checkpoint.json", PARAMS, metadata={"n": [10**400]})
    assert os.listdir(tmp_path) == []


# --- stale temporary files ----------------------------------------------------------------

CRASH = """
import os, signal, sys
from pyrsistent import pmap, pvector
from functional_nn.serialization import save_checkpoint, write_atomically
folder, what, where = sys.argv[1:]
real_write = os.write
def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)
def write_ten_bytes_then_die(fd, data):
    real_write(fd, data[:10])
    die()
if where == "rename":
    os.replace = die
else:
    os.write = write_ten_bytes_then_die
if what == "checkpoint":
    save_checkpoint(os.path.join(folder, "checkpoint.json"), pmap({"w": pvector([1.0, 2.0])}))
else:
    write_atomically(os.path.join(folder, "metrics.csv"), what.encode())
"""


def crash_while_saving(folder: Path, what: str, where: str = "rename") -> Path:
    """Run a process that is killed in a save (before its rename, or its first write); its temporary file."""
    before = set(os.listdir(folder))
    result = subprocess.run(
        [sys.executable, "-c", CRASH, str(folder), what, where], capture_output=True, check=False
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    (left,) = set(os.listdir(folder)) - before
    return folder / left


def age(path: Path, seconds: float) -> None:
    """Set ``path``'s modification time ``seconds`` into the past."""
    mtime = path.lstat().st_mtime - seconds
    os.utime(path, (mtime, mtime), follow_symlinks=False)


posix_only = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


@posix_only
def test_only_temporary_files_the_library_wrote_are_removed(tmp_path: Path) -> None:
    checkpoint = crash_while_saving(tmp_path, "checkpoint")
    metrics = crash_while_saving(tmp_path, "epoch,loss\n0,0.5\n")
    assert checkpoint.name.startswith(".checkpoint-") and checkpoint.name.endswith(".tmp")
    users = tmp_path / ".checkpoint-mine.tmp"
    users.write_text("my own notes")
    look_alike = tmp_path / ".checkpoint-0123456789abcdef.tmp"  # our name pattern, not our content
    look_alike.write_bytes(checkpoint.read_bytes())
    renamed = tmp_path / f".checkpoint-{metrics.name[12:20]}{checkpoint.name[20:28]}.tmp"
    renamed.write_bytes(checkpoint.read_bytes())  # a real nonce and a real tag, not of one file
    for path in (checkpoint, metrics, users, look_alike, renamed):
        age(path, 2 * STALE_AFTER_SECONDS)
    removed = remove_stale_temporaries(tmp_path)
    assert removed == sorted([str(checkpoint), str(metrics)])
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in (users, look_alike, renamed))
    assert users.read_text() == "my own notes"
    assert remove_stale_temporaries(tmp_path) == []


@posix_only
def test_a_recent_temporary_file_is_kept_as_another_save_may_be_writing_it(tmp_path: Path) -> None:
    temporary = crash_while_saving(tmp_path, "checkpoint")
    assert remove_stale_temporaries(tmp_path) == []
    assert temporary.exists()
    age(temporary, STALE_AFTER_SECONDS / 2)
    assert remove_stale_temporaries(tmp_path) == []
    assert remove_stale_temporaries(tmp_path, older_than=STALE_AFTER_SECONDS / 4) == [str(temporary)]


@posix_only
def test_a_symbolic_link_with_the_name_of_a_temporary_file_is_not_followed(tmp_path: Path) -> None:
    target = crash_while_saving(tmp_path, "checkpoint")
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / target.name).symlink_to(target)
    age(target, 2 * STALE_AFTER_SECONDS)
    age(inside / target.name, 2 * STALE_AFTER_SECONDS)
    assert remove_stale_temporaries(inside) == []
    assert target.exists()


@posix_only
def test_a_temporary_file_cut_short_cannot_be_told_apart_and_stays(tmp_path: Path) -> None:
    cut = crash_while_saving(tmp_path, "checkpoint", where="write")
    assert cut.stat().st_size == 10
    empty = tmp_path / ".checkpoint-00000000ffffffff.tmp"
    empty.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path, older_than=0) == []
    assert cut.exists() and empty.exists()


def test_a_completed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_atomically(str(tmp_path / "out.csv"), b"x" * 100)
    assert os.listdir(tmp_path) == ["out.csv"]


def test_bad_arguments_to_remove_stale_temporaries(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot list"):
        remove_stale_temporaries(tmp_path / "missing")
    for bad in (-1.0, float("nan"), True):
        with pytest.raises(ValueError, match="older_than"):
            remove_stale_temporaries(tmp_path, older_than=bad)


def test_fnn_train_keeps_a_users_file_that_looks_temporary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".checkpoint-mine.tmp").write_text("mine")
    run_cli(
        tmp_path, "train", "--dataset", "moons", "--hidden", "4", "--epochs", "1", "--quiet", "--out", "out"
    ).ok()
    assert (out / ".checkpoint-mine.tmp").read_text() == "mine"
