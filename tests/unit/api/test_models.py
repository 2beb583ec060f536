"""The API's body models refuse what the layers below could not carry out."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vibetunnel.api.models import CreateSession


@pytest.mark.parametrize("env", [{"A=B": "x"}, {"": "x"}, {"A\0B": "x"}, {"A": "x\0y"}])
def test_an_environment_exec_cannot_pass_is_refused_by_the_body_model(
    env: dict[str, str],
) -> None:
    with pytest.raises(ValidationError) as caught:
        CreateSession.model_validate({"env": env})
    (error,) = caught.value.errors()
    assert error["loc"] == ("env",)


def test_a_passable_environment_is_taken() -> None:
    body = CreateSession.model_validate({"env": {"LANG": "C.UTF-8", "EMPTY": "", "X": "a=b"}})
    assert body.env == {"LANG": "C.UTF-8", "EMPTY": "", "X": "a=b"}
