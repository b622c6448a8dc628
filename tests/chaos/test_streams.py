"""The stream readers' own logic (chaos/streams.py): parsing Server-Sent Events as they
come in pieces, and the audit of what a ``/v1`` reader received against its timeline.
(The readers themselves run against a real stream process in the fault suite,
tests/chaos/test_faults.py, and the soak.)"""
from chaos.streams import Arrival, Connection, audit_v1, parse_sse


def test_parse_sse_reads_events_split_anywhere_and_skips_comments():
    raw = (b":)\n\nevent: tweet\nid: 7\ndata: {\"tweet_id\": \"7\"}\n\n:\n\n"
           b"event: tweet\ndata: {\"tweet_id\": \"5\"}\n\nevent: delete\r\ndata: {\"tweet_id\": \"7\"}\r\n\r\n"
           b"event: tweet\nid: 9\ndata: {\"tweet_id\"")  # the last one never ends
    for size in (1, 3, 7, len(raw)):
        chunks = [raw[i:i + size] for i in range(0, len(raw), size)]
        assert list(parse_sse(chunks)) == [("tweet", "7", '{"tweet_id": "7"}'), ("tweet", None, '{"tweet_id": "5"}'),
                                           ("delete", None, '{"tweet_id": "7"}')]


def test_parse_sse_joins_data_lines():
    assert list(parse_sse([b"data: a\ndata: b\n\n"])) == [("message", None, "a\nb")]


def arrivals(*pairs, connection=0):
    return [Arrival(t, with_id, connection, 0.0) for t, with_id in pairs]


def test_audit_accepts_the_timeline_head_received_in_any_order_once():
    got = arrivals((10, True), (12, True), (11, False), (14, True))
    audit = audit_v1(got, [Connection(0.0, "200", None)], set(), head=[14, 12, 11, 10])
    assert audit.ok and audit.out_of_order == 1 and audit.expected == audit.received == 4


def test_audit_names_missing_extra_and_repeated_tweets():
    got = arrivals((10, True), (12, True), (12, True), (13, True))
    audit = audit_v1(got, [Connection(0.0, "200", None)], set(), head=[14, 12, 11, 10])
    assert audit.gaps == [11, 14] and audit.extra == [13] and audit.duplicates == [12]
    assert not audit.ok


def test_audit_ignores_tweets_older_than_the_first_and_drops_heard_deletes():
    got = arrivals((10, True), (8, False), (12, True))
    audit = audit_v1(got, [Connection(0.0, "200", None)], {12}, head=[10])
    assert audit.ok and audit.received == 1


def test_a_tweet_older_than_the_last_event_id_resumed_from_is_reported_as_not_replayed():
    connections = [Connection(1.0, "200", None, ended=2.0), Connection(2.5, "503", 12, ended=2.5),
                   Connection(3.0, "200", 12)]
    got = arrivals((10, True), (12, True)) + arrivals((14, True), connection=2)
    audit = audit_v1(got, connections, set(), head=[14, 13, 12, 11, 10])
    assert audit.missing == [11, 13]
    assert audit.not_replayed == [{"tweet_id": 11, "last_event_id": 12, "disconnected_at": 2.0,
                                   "reconnected_at": 3.0}]
    assert audit.gaps == [13]  # newer than what it resumed from: the resume should have sent it
