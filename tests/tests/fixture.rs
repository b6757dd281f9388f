//! The fixture itself: a streaming standby follows its primary, and a server
//! started under libfaketime sees its clock moved (and back on restart).

use pgssl_tests::{unix_now, TlsCluster};

/// The server's `now()` minus the test's clock, in seconds.
fn server_clock_offset(cluster: &TlsCluster) -> i64 {
    let server: f64 = cluster
        .sql("SELECT extract(epoch FROM now())")
        .parse()
        .unwrap();
    (server - unix_now() as f64).round() as i64
}

const DAY: i64 = 86_400;

#[test]
fn faketime_moves_the_servers_clock_and_a_restart_can_put_it_back() {
    let mut cluster = TlsCluster::builder()
        .faketime("+30d")
        .without_extension()
        .start();
    assert_eq!(cluster.faketime(), Some("+30d"));
    let offset = server_clock_offset(&cluster);
    assert!(
        (30 * DAY - 600..=30 * DAY + 600).contains(&offset),
        "now() is {offset} s off, not 30 days"
    );
    cluster.restart_with_faketime(Some("-2d"));
    let offset = server_clock_offset(&cluster);
    assert!(
        (-2 * DAY - 600..=-2 * DAY + 600).contains(&offset),
        "now() is {offset} s off, not -2 days"
    );
    cluster.restart_with_faketime(None);
    let offset = server_clock_offset(&cluster);
    assert!(offset.abs() < 600, "now() is {offset} s off the real clock");
}

#[test]
fn a_standby_replays_the_primary_also_with_its_clock_moved() {
    let primary = TlsCluster::builder().replication().start();
    primary.sql("CREATE TABLE replicated (n int); INSERT INTO replicated VALUES (1)");
    let mut standby = primary.start_standby();
    assert_ne!(standby.port, primary.port);
    assert_eq!(standby.sql("SELECT pg_is_in_recovery()"), "t");
    assert_eq!(primary.sql("SELECT pg_is_in_recovery()"), "f");
    assert_eq!(standby.sql("SELECT count(*) FROM replicated"), "1");
    assert_eq!(
        standby.sql("SELECT extversion FROM pg_extension WHERE extname = 'pgssl'"),
        primary.sql("SELECT extversion FROM pg_extension WHERE extname = 'pgssl'")
    );

    primary.sql("INSERT INTO replicated SELECT generate_series(2, 100)");
    let lsn = primary.current_wal_lsn();
    standby.wait_for_replay(&lsn);
    assert_eq!(standby.sql("SELECT sum(n) FROM replicated"), "5050");

    // The standby serves TLS with the primary's certificate to verify-full clients.
    let alice = standby.client_cert(&[("CN", "alice")]);
    primary.sql("CREATE ROLE alice LOGIN");
    standby.catch_up_with(&primary);
    assert_eq!(
        standby.psql_ok(
            &standby.verify_full("alice", Some(&alice)),
            "SELECT pgssl.client_cn()"
        ),
        "alice"
    );

    // Moved forward a month, it still follows the primary.
    standby.restart_with_faketime(Some("+30d"));
    let offset = server_clock_offset(&standby);
    assert!(
        (30 * DAY - 600..=30 * DAY + 600).contains(&offset),
        "the standby's now() is {offset} s off, not 30 days"
    );
    assert!(server_clock_offset(&primary).abs() < 600);
    primary.sql("DELETE FROM replicated WHERE n > 10");
    standby.catch_up_with(&primary);
    assert_eq!(standby.sql("SELECT sum(n) FROM replicated"), "55");
    assert_eq!(standby.sql("SELECT pg_is_in_recovery()"), "t");
}
