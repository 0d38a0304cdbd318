"""Issue 23, item 5: non-finite and absurd option values are refused by the option declarations, with a message
that names the option and exit status 2, before any work (no model is loaded, nothing is read)."""
from __future__ import annotations

import math

import pytest

from app.cli import main
from engine.settings import OPTIONS, EngineSettings, SettingsError

from conftest import ROOT

SAMPLE = str(ROOT / "resources" / "sample.pdf")


@pytest.mark.parametrize("flag, value, told", [
    ("--cache-cap-gb", "inf", "--cache-cap-gb) must be a number, got inf"),
    ("--cache-cap-gb", "nan", "--cache-cap-gb) must be a number, got nan"),
    ("--cache-cap-gb=-inf", None, "--cache-cap-gb) must be a number, got -inf"),
    ("--cache-cap-gb", "1e400", "--cache-cap-gb) must be a number, got inf"),
    ("--cache-cap-gb", "1e300", "--cache-cap-gb) must be between 0 and 1.04858e+06 GB, got 1e+300 GB"),
    ("--cache-cap-gb", "-1", "--cache-cap-gb) must be between 0 and"),
    ("--reselect-every", "999999999999", "--reselect-every) must be between 0 and 4096 tokens, got 999,999,999,999"),
    ("--reselect-every", "-1", "--reselect-every) must be between 0 and 4096"),
    ("--gamma", "nan", "--gamma) must be a number, got nan"),
    ("--gamma", "inf", "--gamma) must be a number, got inf"),
    ("--gamma", "1.5", "--gamma) must be between 0 and 1, got 1.5"),
    ("--group", "0", "--group) must be between 1 and 4096"),
    ("--focal", "100000000", "--focal) must be between 32 and 65536 tokens"),
    ("--max-new-tokens", "999999999999", "--max-new-tokens) must be between 1 and 4096 tokens"),
])
def test_a_bad_number_exits_2_with_a_message_naming_the_option(capsys, flag, value, told):
    assert main(["ask", SAMPLE, "How tall is the tower?", flag, *([value] if value else [])]) == 2
    err = capsys.readouterr().err
    assert told in err and err.startswith("docfocus: ") and "Traceback" not in err, err


@pytest.mark.parametrize("flag, value", [("--max-new-tokens", "1e9"), ("--focal", "nan"), ("--group", "many")])
def test_a_number_of_the_wrong_kind_is_an_argparse_error(capsys, flag, value):
    with pytest.raises(SystemExit) as stopped:
        main(["ask", SAMPLE, "q", flag, value])
    assert stopped.value.code == 2 and f"argument {flag}: invalid" in capsys.readouterr().err


def test_every_numeric_option_refuses_non_finite_values_as_typed():
    for option in OPTIONS:
        if option.low is None and option.high is None:
            continue
        for value in (math.inf, -math.inf, math.nan):
            with pytest.raises(SettingsError, match="must be a number"):
                option.from_user(value)
        assert option.high is not None and option.low is not None, option.name  # every number is bounded


@pytest.mark.parametrize("parts", [{"answer": {"attention_weight": math.nan}},
                                   {"attention": {"dga": {"gamma": math.inf}}},
                                   {"reading": {"prefill_dga": {"gamma": math.nan}}}])
def test_fields_without_an_option_refuse_non_finite_values_too(parts):
    with pytest.raises(SettingsError):
        EngineSettings().changed(**parts)
