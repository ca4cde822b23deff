"""The character-level example: a few steps lower the loss, text comes from the vocabulary,
the same seed gives the same run, and the command prints both."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import pytest

from functional_nn import random
from functional_nn.examples.char_model import (
    AttentionCharModel,
    CharModel,
    Vocabulary,
    generate,
    load_text,
    main,
    sample_windows,
    train,
)

TEXT = load_text()
VOCAB = Vocabulary.of(TEXT)
IDS = VOCAB.encode(TEXT)
MODEL = CharModel(len(VOCAB), embedding=8, hidden=16)
ATTENTION = AttentionCharModel(len(VOCAB), width=8, heads=2, context=12)


def test_the_shipped_text_is_coriolanus_and_its_vocabulary_round_trips() -> None:
    assert TEXT.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    assert len(TEXT) == 32355 and len(VOCAB) == 58
    assert VOCAB.decode(IDS) == TEXT
    with pytest.raises(ValueError, match="'~' is not in the vocabulary"):
        VOCAB.encode("a~")


def test_windows_are_slices_of_the_text() -> None:
    batch = sample_windows(IDS, random.key(0), 4, 9)
    assert len(batch.inputs) == 4
    for window in batch.inputs:
        assert len(window) == 9 and VOCAB.decode([int(i) for i in window]) in TEXT
    with pytest.raises(ValueError, match="too few for windows of 9"):
        sample_windows(IDS[:9], random.key(0), 1, 9)


def test_a_few_steps_lower_the_loss_and_the_same_seed_repeats_them() -> None:
    options = {"steps": 12, "batch_size": 8, "time": 12, "lr": 0.03}
    params, losses = train(MODEL, IDS, key=random.key(1), **options)  # type: ignore[arg-type]
    assert losses[0] == pytest.approx(math.log(len(VOCAB)), abs=0.3)  # about uniform at the start
    assert sum(losses[-3:]) / 3 < losses[0] - 0.3
    again, again_losses = train(MODEL, IDS, key=random.key(1), **options)  # type: ignore[arg-type]
    assert again_losses == losses
    text = generate(MODEL, params, VOCAB, "MEN", 40, key=random.key(2))
    assert text.startswith("MEN") and len(text) == 43 and set(text) <= set(VOCAB.chars)
    assert generate(MODEL, again, VOCAB, "MEN", 40, key=random.key(2)) == text


def test_generate_refuses_an_empty_prompt_and_a_bad_temperature() -> None:
    params = MODEL.init(random.key(0))
    with pytest.raises(ValueError, match="the prompt is empty"):
        generate(MODEL, params, VOCAB, "", 3, key=random.key(0))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        generate(MODEL, params, VOCAB, "a", 3, key=random.key(0), temperature=0.0)


def test_main_prints_the_falling_loss_then_the_generated_text() -> None:
    out = io.StringIO()
    args = ["--steps", "10", "--batch-size", "4", "--time", "8", "--hidden", "8", "--length", "30"]
    assert main(args, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("training a GRU (8 hidden) on 32355 characters of Coriolanus (58 distinct)")
    assert [line.split()[:2] for line in lines[1:11]] == [["step", str(n)] for n in range(1, 11)]
    assert lines[11].startswith("loss: ") and lines[12] == "generated:"
    generated = "\n".join(lines[13:])
    assert generated.startswith("First Citizen:") and set(generated) <= set(VOCAB.chars)


def test_the_module_runs_as_a_command_with_the_same_output_for_the_same_seed() -> None:
    argv = [sys.executable, "-m", "functional_nn.examples.char_model", "--steps", "4", "--time", "6"]
    argv += ["--batch-size", "2", "--hidden", "6", "--length", "20", "--seed", "3"]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    second = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
    assert first.stdout == second.stdout and "generated:" in first.stdout
    bad = subprocess.run([*argv[:3], "--steps", "0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--steps must be >= 1" in bad.stderr


def test_the_attention_model_is_causal_learns_and_refuses_windows_past_its_positions() -> None:
    params = ATTENTION.init(random.key(0))
    assert sorted(params) == ["attention", "embedding", "head", "head_norm", "norm", "position"]
    ids = [list(IDS[:10])]
    changed = [[*IDS[:6], (IDS[6] + 1) % len(VOCAB), *IDS[7:10]]]  # differs from step 6 on
    logits, other = ATTENTION.apply(params, ids), ATTENTION.apply(params, changed)
    assert logits[0][:6] == other[0][:6]  # a step sees only itself and the steps before it
    assert logits[0][6] != other[0][6]
    options = {"steps": 12, "batch_size": 8, "time": 10, "lr": 0.03}
    _, losses = train(ATTENTION, IDS, key=random.key(1), **options)  # type: ignore[arg-type]
    assert sum(losses[-3:]) / 3 < losses[0] - 0.3
    with pytest.raises(ValueError, match="13 steps but the model has 12 positions"):
        ATTENTION.apply(params, [list(IDS[:13])])


def test_main_trains_the_attention_model_on_request() -> None:
    out = io.StringIO()
    args = ["--model", "attention", "--steps", "4", "--batch-size", "2", "--time", "8", "--hidden", "8"]
    assert main([*args, "--length", "10"], out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("training a causal attention block (8 wide, 2 heads) on 32355 characters")
    assert lines[5].startswith("loss: ") and lines[6] == "generated:"
    with pytest.raises(SystemExit):
        main(["--model", "attention", "--time", "40"], out=io.StringIO())
