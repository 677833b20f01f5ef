"""TOML reading: deep nesting is a TOMLDecodeError (one sentence upstream), not a RecursionError."""

from __future__ import annotations

import pytest

from mosapp.core.toml import MAX_DEPTH, TOMLDecodeError, loads


@pytest.mark.parametrize("text", ["a = " + "[" * 3000 + "]" * 3000, "a = " + "{b = " * 3000 + "1" + "}" * 3000,
                                  "a = " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)])
def test_deep_nesting_is_a_decode_error(text):
    with pytest.raises(TOMLDecodeError, match="nest"):
        loads(text)


def test_brackets_in_strings_and_comments_do_not_count():
    text = ('a = "[[[[{{{{" # ]]]] [[[[\n' + "b = '''" + "[" * 100 + "'''\n"
            + 'c = """\\"[[[[[\\""""\n[t]\nd = [[1, 2], [3]]\n')
    assert loads(text) == {"a": "[[[[{{{{", "b": "[" * 100, "c": '"[[[[["', "t": {"d": [[1, 2], [3]]}}
    nested = "x = " + "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(nested)["x"] is not None


def test_a_deeply_nested_study_file_is_one_sentence(tmp_path):
    from mosapp.study.definition import load_study
    from mosapp.study.errors import StudyError

    path = tmp_path / "deep.toml"
    path.write_text('title = "x"\nx = ' + "[" * 3000 + "]" * 3000 + "\n", encoding="utf-8")
    with pytest.raises(StudyError) as info:
        load_study(path)
    assert "is not valid TOML" in str(info.value) and "\n" not in str(info.value)
