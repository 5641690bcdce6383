"""The plate reader's training data and training path: deterministic crops, a short run that exports an
ONNX file the runtime reader loads, and the CTC decoding the runtime relies on."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.plates import PlateRecognizer, is_plate_text
from training.plates.render import CHARSET, HEIGHT, WIDTH, random_text, render_plate, sample_batch
from training.plates.train import greedy_decode, render_set, train_reader


def test_crops_are_deterministic_from_the_seed():
    a_img, a_txt = sample_batch(7, 12)
    b_img, b_txt = sample_batch(7, 12)
    assert np.array_equal(a_img, b_img) and a_txt == b_txt
    assert a_img.shape == (12, HEIGHT, WIDTH) and a_img.dtype == np.uint8
    assert sample_batch(8, 12)[1] != a_txt


def test_the_rendered_set_does_not_depend_on_the_number_of_workers():
    one, two = render_set(3, 2100, workers=1), render_set(3, 2100, workers=2)  # two chunks
    assert np.array_equal(one[0], two[0]) and one[1] == two[1] and len(one[1]) == 2100


def test_every_text_is_a_plate_in_the_character_set():
    rng = np.random.default_rng(0)
    texts = [random_text(rng) for _ in range(2000)]
    assert all(is_plate_text(t) and set(t) <= set(CHARSET) for t in texts)
    assert len({t[0] for t in texts}) > 25  # the rare provinces are drawn too


def test_a_plate_has_seven_or_eight_characters():
    with pytest.raises(ValueError, match="7 or 8 characters"):
        render_plate("沪A1234", "blue")


def test_ctc_greedy_decoding_merges_repeats_and_drops_blanks():
    charset = "AB1"
    cols = [1, 1, 0, 1, 2, 2, 0, 0, 3]  # A A _ A B B _ _ 1 -> AAB1
    scores = np.full((1, len(cols), 4), -9.0)
    scores[0, np.arange(len(cols)), cols] = 0.0
    assert greedy_decode(scores, charset) == ["AAB1"]


def test_a_short_training_run_exports_a_reader_the_runtime_loads(tmp_path):
    out = tmp_path / "plate.onnx"
    summary = train_reader(out, samples=256, epochs=1, seed=1, batch=64, workers=1, version="smoke")
    assert summary["samples"] == 256 and 0.0 <= summary["validation_exact"] <= 1.0
    rec = PlateRecognizer(out)
    assert rec.charset == CHARSET and rec.version == "smoke" and (rec.height, rec.width) == (HEIGHT, WIDTH)
    images, _ = sample_batch(2, 3)
    reads = rec.read(list(images))
    assert len(reads) == 3 and all(isinstance(t, str) and all(0.0 <= p <= 1.0 for p in c) for t, c in reads)
