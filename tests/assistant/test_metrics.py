"""The scores, on cases worked out by hand."""

from __future__ import annotations

import math

import pytest

from assistant.batch.metrics import (
    abstention_accuracy,
    citation_precision,
    exact_match,
    mrr,
    ndcg_at_10,
    normalize_answer,
    recall_at_k,
    source_matches,
    token_f1,
)


def test_squad_normalisation() -> None:
    assert normalize_answer("  The Bravo-team,  an Inc.!") == "bravoteam inc"
    assert normalize_answer("A") == ""


def test_exact_match_takes_the_best_expected_answer() -> None:
    assert exact_match("the Eagle.", ["The Eagle"]) == 1.0
    assert exact_match("Eagle 1", ["The Eagle"]) == 0.0
    assert exact_match("Lara", ["DJ AM", "lara"]) == 1.0
    assert exact_match("anything", []) == 0.0


def test_token_f1_by_hand() -> None:
    # prediction {dj, am, won} vs {dj, am}: precision 2/3, recall 1 -> F1 0.8
    assert token_f1("DJ AM won", ["DJ AM"]) == pytest.approx(0.8)
    assert token_f1("DJ AM won", ["Lara", "DJ AM"]) == pytest.approx(0.8)
    # {backups, run, nightly, at, 2am} vs {nightly}: precision 1/5, recall 1 -> 1/3
    assert token_f1("Backups run nightly at 2am", ["nightly"]) == pytest.approx(1 / 3)
    # a repeated token counts as often as it occurs in both: [x, x, y] vs [x, y, y] -> 2 of 3
    assert token_f1("x x y", ["x y y"]) == pytest.approx(2 / 3)
    assert token_f1("", ["the"]) == 1.0  # both empty once normalised
    assert token_f1("", ["Lara"]) == 0.0
    assert token_f1("Lara", []) == 0.0


def test_source_matching_by_path_or_path_suffix() -> None:
    assert source_matches("/docs/a.txt", "/docs/a.txt")
    assert source_matches("/docs/a.txt", "a.txt")
    assert source_matches("/docs/faq/programming.rst", "faq/programming.rst")
    assert source_matches("/docs/faq/programming.rst", "docs/faq/programming.rst")
    assert source_matches("/docs/faq/programming.rst", "./faq/programming.rst")
    assert not source_matches("/docs/xfaq/programming.rst", "faq/programming.rst")  # components
    assert not source_matches("/docs/a.txt", "other/a.txt")
    assert not source_matches("/docs/a.txt", "/a.txt")  # an absolute path must match in full
    assert not source_matches("/a.txt", "docs/a.txt")  # longer than the source
    assert not source_matches("/docs/a.txt", "A.txt")
    assert not source_matches("/docs/ba.txt", "a.txt")
    assert not source_matches("/docs/a.txt", "")


RETRIEVED = ["/d/a.txt", "/d/a.txt", "/d/b.txt", "/d/c.txt"]  # documents a, b, c in that order


def test_recall_at_k_counts_documents_of_the_first_k_chunks() -> None:
    assert recall_at_k(RETRIEVED, ["b.txt", "c.txt"], k=3) == 0.5  # a, a, b
    assert recall_at_k(RETRIEVED, ["b.txt", "c.txt"], k=4) == 1.0
    assert recall_at_k(RETRIEVED, ["a.txt", "a.txt"], k=1) == 1.0  # an expected one counts once
    assert recall_at_k(RETRIEVED, ["z.txt"], k=4) == 0.0
    with pytest.raises(ValueError, match="expected source"):
        recall_at_k(RETRIEVED, [], k=4)


def test_mrr_ranks_documents_not_chunks() -> None:
    assert mrr(RETRIEVED, ["c.txt"]) == pytest.approx(1 / 3)
    assert mrr(RETRIEVED, ["c.txt", "b.txt"]) == pytest.approx(1 / 2)
    assert mrr(RETRIEVED, ["z.txt"]) == 0.0


def test_ndcg_at_10_by_hand() -> None:
    # b at document rank 2, c at 3; ideal: both at ranks 1 and 2
    expected = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_10(RETRIEVED, ["b.txt", "c.txt"]) == pytest.approx(expected)
    assert ndcg_at_10(RETRIEVED, ["a.txt"]) == 1.0
    # three expected, one found at rank 1: 1 / (1 + 1/log2(3) + 1/2)
    assert ndcg_at_10(RETRIEVED, ["a.txt", "y.txt", "z.txt"]) == pytest.approx(
        1 / (1 + 1 / math.log2(3) + 0.5)
    )
    far = [f"/d/{n}.txt" for n in range(10)] + ["/d/z.txt"]
    assert ndcg_at_10(far, ["z.txt"]) == 0.0  # the 11th chunk is past the cut


def test_citation_precision_is_the_share_of_cited_chunks_holding_an_answer() -> None:
    cited = ["The Eagle landed gently.", "A balloon crashed at takeoff."]
    assert citation_precision(cited, ["the eagle"]) == 0.5
    assert citation_precision(cited, ["balloon", "Eagle"]) == 1.0
    assert citation_precision(["Larakin said so."], ["Lara"]) == 0.0  # whole words only
    assert citation_precision([], ["Lara"]) is None


def test_abstention_accuracy() -> None:
    abstained = [True, False, True, False]
    unanswerable = [True, True, False, False]
    assert abstention_accuracy(abstained, unanswerable) == 0.5
    with pytest.raises(ValueError):
        abstention_accuracy([True], [True, False])
