"""The forgetting guard (keyboard_lm/personalize/guard.py): its ladder on a known loss
surface, then a real fine-tune of the toy base that forgets, through the command."""
import json

import numpy as np
import pytest

from keyboard_lm.cli import main
from keyboard_lm.personalize.guard import BISECTIONS, CHOSEN, blend, limit_forgetting
from keyboard_lm.training.evaluate import evaluate_messages
from tests.keyboard_lm.test_personalize import write_user

BASE = [np.zeros(3, np.float32), np.array([7], np.int64)]  # an integer weight is never blended


def _loss(weights):
    """General loss 1 at the base, rising with the squared distance from it."""
    return 1.0 + float(np.sum(np.square(weights[0])))


def _weights(x):
    return [np.full(3, x, np.float32), np.array([7], np.int64)]


def test_a_fine_tune_within_the_limit_ships_as_it_ended():
    final = _weights(0.05)  # rise 0.75%
    shipped, record = limit_forgetting(final, _weights(0.2), BASE, _loss, 1.0, 0.02)
    assert shipped is final and record["shipped"] == "fine-tuned" and not record["backed_off"]
    assert [t["model"] for t in record["tried"]] == ["fine-tuned"]


def test_over_the_limit_the_chosen_epoch_without_the_final_pass_comes_first():
    chosen = _weights(0.07)  # rise 1.5%
    shipped, record = limit_forgetting(_weights(0.2), chosen, BASE, _loss, 1.0, 0.02)
    assert shipped is chosen and record["shipped"] == CHOSEN and record["backed_off"]
    assert record["shipped_rise"] == pytest.approx(3 * 0.07 ** 2, rel=1e-5)
    assert "rose 12.0%, over the 2.0% limit" in record["why"]


def test_then_the_largest_measured_blend_within_the_limit():
    chosen = _weights(0.3)  # rise 27%: a blend a*0.3 is within 2% for a <= 0.272
    shipped, record = limit_forgetting(_weights(0.4), chosen, BASE, _loss, 1.0, 0.02)
    a = record["blend"]
    assert record["shipped"] == f"blend {a:.5g}" and 0.272 - 1 / 2 ** BISECTIONS <= a <= 0.272
    assert np.allclose(shipped[0], a * 0.3) and shipped[1].dtype == np.int64 and shipped[1][0] == 7
    assert record["shipped_rise"] <= 0.02
    assert len(record["tried"]) == 2 + BISECTIONS
    assert all(t["rise"] > 0.02 for t in record["tried"] if t["model"].startswith("blend")
               and float(t["model"].split()[1]) > a)  # every larger blend measured was over


def test_with_no_room_at_all_the_base_ships():
    shipped, record = limit_forgetting(_weights(0.4), None, BASE, _loss, 1.0, 0.0)
    assert record["shipped"] == "the base" and record["blend"] == 0.0 and record["shipped_rise"] == 0.0
    assert shipped is BASE


def test_blend_is_the_base_at_zero_and_the_model_at_one():
    model = _weights(0.3)
    assert np.array_equal(blend(BASE, model, 0.0)[0], BASE[0]) and np.array_equal(blend(BASE, model, 1.0)[0], model[0])


def test_a_real_fine_tune_that_forgets_is_backed_off(toy_run, tmp_path, capsys):
    """The toy user's high learning rate raises the general loss well over the limit (without
    the guard that model ships: FAST runs in test_personalize); with it, through the command,
    what ships is measured within the limit, the report says which and why, and the saved
    model and bundle are that one."""
    user = write_user(tmp_path / "u.txt")
    assert main(["personalize", "--base", str(toy_run), "--texts", str(user), "--out", str(tmp_path / "guarded"),
                 "--epochs", "2", "--learning-rate", "1e-2", "--batch-size", "8", "--general-limit", "200",
                 "--ksr-limit", "10", "--quantize", "float32", "--max-forgetting", "2"]) == 0
    printed = capsys.readouterr().out
    guarded = json.loads((tmp_path / "guarded" / "report.json").read_text())
    guard = guarded["forgetting_guard"]
    assert guard["backed_off"] and guard["limit"] == 0.02
    assert guard["tried"][0]["model"] == "fine-tuned" and guard["tried"][0]["rise"] > 0.05  # something to catch
    assert f"forgetting guard: shipped {guard['shipped']}" in printed and "over the 2.0% limit" in printed
    shipped_rise = guarded["after"]["general"]["loss"] / guarded["before"]["general"]["loss"] - 1
    assert shipped_rise <= 0.02 + 1e-6 and shipped_rise == pytest.approx(guard["shipped_rise"], abs=1e-5)
    assert not guarded["final_pass"] and not guarded["user_after_before_final_pass"]
    best = json.loads((tmp_path / "guarded" / "best.json").read_text())
    assert best["forgetting_guard"] == guard["shipped"] and "final_pass" not in best
    # the saved model is the shipped one: its loss on the user's held-out text is the report's
    held = user.read_text().splitlines()[-12:]
    measured = evaluate_messages(tmp_path / "guarded", {"held": held})["held"]
    assert measured["perplexity"] == pytest.approx(guarded["after"]["eval"]["perplexity"], rel=1e-3)
    if guard["shipped"] != "the base":  # it kept something of the user
        assert guarded["after"]["eval"]["perplexity"] < guarded["before"]["eval"]["perplexity"]
    assert "ksr" in guarded and not (tmp_path / "guarded" / ".chosen-epoch-bundle").exists()
    options = json.loads((tmp_path / "guarded" / "config.json").read_text())["personalization"]["options"]
    assert options["max_forgetting"] == 0.02


@pytest.mark.parametrize("value", ["-1", "2%", "1000", "nan", "two"])
def test_a_bad_limit_is_refused_before_any_work(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["personalize", "--base", str(tmp_path / "no-base"), "--texts", "x", "--out", str(tmp_path / "p"),
              "--max-forgetting", value])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and "argument --max-forgetting" in err, err
    assert not (tmp_path / "p").exists()
