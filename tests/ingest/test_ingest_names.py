"""Firehose names objects freely and the contract says any name: a name that reads as a pattern
(DuckDB's readers glob their paths) must load its own records, never another object's or none."""

from __future__ import annotations

from landing_builder import ses_event, write_object


def test_names_with_glob_characters_load_their_own_records(lake):
    write_object(lake.landing, "2026/11/20/10/a", [ses_event("Send", "m-a")])
    write_object(lake.landing, "2026/11/20/10/b", [ses_event("Send", "m-b")])
    assert lake.ingest()["events_loaded"] == 2
    # "[ab]" matches a and b as a pattern; "*" matches everything; "{x}" is a brace pattern.
    write_object(lake.landing, "2026/11/20/10/[ab]", [ses_event("Send", "m-c"), ses_event("Open", "m-c")])
    write_object(lake.landing, "2026/11/20/10/*", [ses_event("Send", "m-d")], gzipped=True)
    write_object(lake.landing, "2026/11/20/10/x{y}", [ses_event("Send", "m-e")], framing="concatenated")

    counts = lake.ingest()
    assert (counts["objects_loaded"], counts["events_loaded"], counts["rejected"]) == (3, 4, 0)
    by_key = dict(lake.rows("select key, events_loaded from raw.ingested_objects"))
    assert (
        by_key["2026/11/20/10/[ab]"] == 2
        and by_key["2026/11/20/10/*"] == 1
        and by_key["2026/11/20/10/x{y}"] == 1
    )
    assert lake.scalar("select count(distinct message_id) from raw.ses_events") == 5
