"""No `_created` series: every counter and histogram would otherwise export a second, useless one."""

from __future__ import annotations


def test_a_full_scrape_has_no_created_series(full_scrape: str) -> None:
    created = [line for line in full_scrape.splitlines() if "_created" in line.split("{")[0].split(" ")[0]]
    assert created == [], created[:5]
    assert "phoenix_job_restarts_total" in full_scrape  # the counters themselves are there
