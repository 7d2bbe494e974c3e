"""Random edits to the example specs through the protocol: the server never fails, and its last
diagnostics are `lint`'s on the final text (one server for all examples; hypothesis draws the edits)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pygls")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from lsprotocol import types as lsp  # noqa: E402

from tests.lsp_client import ROOT, Session, apply_edits  # noqa: E402
from tests.test_lsp import lint_messages, served  # noqa: E402

SPECS = [ROOT / "specs" / n for n in ("mnist_mlp.yaml", "autoencoder.yaml", "shared_embedding.yaml",
                                      "ticket_router.yaml")] + [ROOT / "specs" / "resnet_family" / "resnet34.yaml"]
PIECES = st.sampled_from(["", " ", "\n", ":", "{", "}", "[", "]", ",", "-", "$", "${", "x", "units", "type: Dense",
                          "inputs: ", "  ", "'", "#", "64", "dense_1", "\t", "é"])


@st.composite
def edit(draw: st.DrawFn, text: str) -> tuple[int, int, str]:
    """(start, end, new text): offsets into the text the edit applies to."""
    start = draw(st.integers(0, len(text)))
    end = min(len(text), start + draw(st.integers(0, 12)))
    return start, end, "".join(draw(st.lists(PIECES, max_size=3)))


def _position(text: str, offset: int) -> lsp.Position:
    before = text[:offset]
    line = before.count("\n")
    return lsp.Position(line, offset - (before.rfind("\n") + 1))


@pytest.fixture(scope="module")
def session() -> Iterator[Session]:
    s = Session()
    yield s
    errors = s.errors()
    s.close()
    assert errors == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_random_edits_end_in_lints_diagnostics(session: Session, data: st.DataObject) -> None:
    path: Path = data.draw(st.sampled_from(SPECS))
    text = path.read_text(encoding="utf-8")
    uri, _ = session.open(path, text)
    changes: list[tuple[lsp.Range | None, str]] = []
    for _ in range(data.draw(st.integers(1, 6))):
        start, end, new = data.draw(edit(text))
        rng = lsp.Range(_position(text, start), _position(text, end))
        text = apply_edits(text, [lsp.TextEdit(rng, new)])
        changes.append((rng, new))
    diags = session.change(uri, changes) or []
    assert served(diags) == lint_messages(path, text)
    # requests on the last complete analysis answer, whatever the text now is
    session.hover(uri, 5, 3)
    session.inlay(uri, 200)
    session.completion(uri, 5, 3)
    session.symbols(uri)
    session.close_doc(uri)
    assert session.errors() == []
