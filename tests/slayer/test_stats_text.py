"""``LearningStats`` prints lava-dl's text character for character (tutorial logs and any code
that parses them see the same line) wherever lava-dl prints one."""

from __future__ import annotations

import slayerc.slayer as slayer


def _stat(loss=None, accuracy=None, min_loss=None, max_accuracy=None, **names):
    s = slayer.utils.LearningStats(**names).training
    if loss is not None or accuracy is not None:
        s.num_samples = 4
        s.loss_sum = 4 * (loss or 0.0)
        s.correct_samples = 4 * (accuracy or 0.0)
    s.min_loss, s.max_accuracy = min_loss, max_accuracy
    return s


def test_no_samples_no_text_and_accuracy_always_shown_with_samples():
    assert str(_stat()) == ""
    # with samples the accuracy is a number (0 when nothing was counted), as in lava-dl
    assert str(_stat(0.5, min_loss=0.125, max_accuracy=0.0)) == \
        "loss =     0.50000 (min =     0.12500)     accuracy = 0.00000 (max = 0.00000) "


def test_loss_and_accuracy_keep_lava_dls_spacing():
    # after the first update: best values known; a space after each field, four between
    assert str(_stat(0.5, 0.25, 0.125, 0.75)) == \
        "loss =     0.50000 (min =     0.12500)     accuracy = 0.25000 (max = 0.75000) "
    # before it: two spaces, the loss unit, 24 spaces
    assert str(_stat(0.5, 0.25)) == "loss =     0.50000" + " " * 26 + "accuracy = 0.25000 "


def test_names_and_units():
    names = {"loss_str": "L", "loss_unit": "dB", "accuracy_str": "acc", "accuracy_unit": "%"}
    assert str(_stat(0.5, 0.25, 0.125, 0.75, **names)) == \
        "L =     0.50000 (min =     0.12500) dB    acc = 0.25000 (max = 0.75000) %"
    assert str(_stat(0.5, 0.25, **names)) == "L =     0.50000  dB" + " " * 24 + "acc = 0.25000 %"


def test_cases_lava_dl_cannot_print_print_the_same_fields():
    # lava-dl's str() raises TypeError when only one of the two best values is known
    assert str(_stat(0.5, 0.25, min_loss=0.125)) == \
        "loss =     0.50000 (min =     0.12500)     accuracy = 0.25000 "
    assert str(_stat(0.5, 0.25, max_accuracy=0.75)) == \
        "loss =     0.50000" + " " * 26 + "accuracy = 0.25000 (max = 0.75000) "
