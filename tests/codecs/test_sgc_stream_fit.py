"""A two-band sgc stream must fit the operating point that decodes it: its rate, the weights its
``mi`` names, the type of its ``step`` — each checked with the binding digest recomputed, as a
forger who knows the whole format would."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mosapp.codecs import get_codec
from mosapp.codecs.base import file_model_id
from mosapp.codecs.container import read_sgc
from mosapp.codecs.sgc import ASSETS_MODELS
from mosapp.core.config import PipelineConfig
from mosapp.core.errors import BitstreamError, InvalidStreamError
from tests.helpers import require_codec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sgc"


def _stream(name: str):
    require_codec(name)
    return read_sgc(FIXTURES / f"{name}.sgc")[0]


@pytest.mark.parametrize("coded,label", [("sgc-12", "sgc-6"), ("sgc-12", "sgc-24"), ("sgc-6", "sgc-12"),
                                         ("sgc-24", "sgc-12"), ("sgc-24", "sgc-6")])
def test_a_stream_relabelled_to_another_operating_point_is_refused(coded, label):
    encoded = replace(_stream(coded), codec=label)  # the points share their networks: the mi fits any of them
    with pytest.raises(InvalidStreamError, match="another operating point's stream"):
        get_codec(label).check_stream(encoded)


@pytest.mark.parametrize("name", ["sgc-6", "sgc-12", "sgc-24"])
def test_each_point_s_own_stream_fits(name):
    get_codec(name).check_stream(_stream(name))


@pytest.mark.parametrize("weights,words", [("sgc3-6.pt", "trained for 6 kbit/s"),
                                           ("sgc2.pt", "never coded with")])
def test_an_mi_naming_older_weights_that_cannot_have_coded_it_is_refused(weights, words):
    path = ASSETS_MODELS / weights
    assert path.is_file(), f"{path} is shipped with mosapp (git ls-files assets/models)"
    stream = _stream("sgc-12")
    # as this mosapp codes sgc-12 now: its high_row_slope in the stream
    encoded = replace(stream, model=file_model_id(path), params={**stream.params, "high_row_slope": 0.5})
    with pytest.raises(InvalidStreamError, match=words):
        get_codec("sgc-12").check_stream(encoded)


@pytest.mark.parametrize("step", ["12", "1.5", True, [True, 1.0], ["1", "2"], {"a": 1}])
def test_a_step_that_is_not_numbers_is_refused(step):
    encoded = _stream("sgc-12")
    forged = replace(encoded, params={**encoded.params, "step": step})
    with pytest.raises(BitstreamError, match="quantisation steps are missing or not numbers"):
        get_codec("sgc-12").decode(forged, PipelineConfig(phase="pghi", device="cpu"))
