"""A site's goals and funnels: validation, the stored file, and `traceglider goals` /
`traceglider funnels` on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from traceglider import site_config as C
from traceglider.cli import main
from traceglider.errors import BadRequest, NotFound
from traceglider.storage.local import LocalStorage

SITE = "g.example"


@pytest.mark.parametrize(("raw", "goal"), [
    ("Visit /pricing", "Visit /pricing"),
    ("  Visit   /blog/** ", "Visit /blog/**"),
    ("Signup", "Signup"),
    ("Outbound Link: Click", "Outbound Link: Click"),
])
def test_goals_are_tidied(raw: str, goal: str) -> None:
    assert C.check_goal(raw) == goal


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "required"), (None, "required"), (3, "required"),
    ("Visit pricing", "starts with /"), ("Visit", "starts with /"), ("Visit /a b", "no spaces"),
    ("vital", "measures by itself"), ("engagement", "measures by itself"), ("JS Error", "measures by itself"),
    ("x" * 201, "at most 200"), ("a\nb", "control characters"),
])
def test_bad_goals_say_why(raw: object, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        C.check_goal(raw)


@pytest.mark.parametrize(("raw", "reason"), [
    ({"name": "F", "steps": ["Visit /"]}, "2 to 8 steps"),
    ({"name": "F", "steps": ["Visit /"] * 9}, "2 to 8 steps"),
    ({"name": "", "steps": ["Visit /", "Signup"]}, "name: required"),
    ({"name": "F", "steps": ["Visit /", "vital"]}, "step 2: 'vital' is what the script measures"),
    ({"name": "F", "steps": ["Visit /", "a,b"]}, "step 2: no commas"),
    ("F", "an object"),
])
def test_bad_funnels_say_why(raw: object, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        C.check_funnel(raw)


def test_add_edit_remove_keep_the_rest_of_the_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put(C.key(SITE), json.dumps({"goals": ["Signup", "Visit nope", 7], "owner": "kept"}).encode())
    assert C.read(storage, SITE).goals == ["Signup"]  # what does not validate is left out
    C.add_goal(storage, SITE, "Visit /pricing")
    with pytest.raises(BadRequest, match="exists already"):
        C.add_goal(storage, SITE, "Visit  /pricing")
    C.add_goal(storage, SITE, "Sign up", replace="Signup")
    with pytest.raises(NotFound):
        C.remove_goal(storage, SITE, "Signup")
    C.put_funnel(storage, SITE, {"name": "Buy", "steps": ["Visit /pricing", "Sign up"]})
    C.put_funnel(storage, SITE, {"name": "Buy now", "steps": ["Visit /", "Visit /pricing"]}, replace="Buy")
    stored = json.loads(storage.get(C.key(SITE)))
    assert stored == {"owner": "kept", "goals": ["Sign up", "Visit /pricing"],
                      "funnels": [{"name": "Buy now", "steps": ["Visit /", "Visit /pricing"]}]}
    C.remove_funnel(storage, SITE, "Buy now")
    assert C.read(storage, SITE).funnels == []
    assert C.read(storage, "other.example").goals == []  # none stored: empty


def test_goals_and_funnels_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--site", SITE, "--storage", str(tmp_path)]
    assert main(["goals", "add", "--page", "pricing", *flags]) == 2
    assert "starts with /" in capsys.readouterr().err
    assert main(["goals", "add", "--page", "/pricing/**", *flags]) == 0
    assert main(["goals", "add", "--event", "Signup", *flags]) == 0
    assert main(["goals", "edit", "Signup", "--event", "Sign up", *flags]) == 0
    assert main(["funnels", "add", "--as", "Buy", "--step", "Visit /pricing/**", *flags]) == 2
    assert "2 to 8 steps" in capsys.readouterr().err
    assert main(["funnels", "add", "--as", "Buy", "--step", "Visit /pricing/**", "--step", "Sign up", *flags]) == 0
    capsys.readouterr()
    assert main(["goals", "list", "--json", *flags]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "goals": ["Visit /pricing/**", "Sign up"],
        "funnels": [{"name": "Buy", "steps": ["Visit /pricing/**", "Sign up"]}]}
    assert main(["goals", "remove", "Visit /nope", *flags]) == 2
    assert main(["funnels", "remove", "Buy", *flags]) == 0
    assert main(["funnels", "list", *flags]) == 0
    assert "no funnels on g.example" in capsys.readouterr().out
