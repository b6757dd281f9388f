//! `check_config()`'s pg_hba rules and TLS settings: `pg_hba.conf`-style lines split into the
//! columns `pg_hba_file_rules` shows, and settings lines, through the audit's checks.
//!
//! Input lines: `set NAME VALUE` sets a TLS setting; `error TEXT` is a line the server could
//! not parse; any other line is `type database user [address [netmask]] method [options...]`
//! (`local` lines have no address).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pgssl_fuzz::audit::checks::{evaluate, Facts, HbaRule};
use pgssl_fuzz::audit::versions::{self, TlsSettings};

fn rule(line: i32, words: &[&str]) -> HbaRule {
    let mut rule = HbaRule {
        line,
        ..HbaRule::default()
    };
    let mut words = words.iter().map(|w| w.to_string());
    rule.kind = words.next().unwrap_or_default();
    rule.database = words.next().unwrap_or_default();
    rule.user = words.next().unwrap_or_default();
    let rest: Vec<String> = words.collect();
    let mut rest = rest.into_iter();
    if rule.kind != "local" {
        rule.address = rest.next();
        // A second address-like word is a netmask.
        let peek: Vec<String> = rest.collect();
        let mut after = peek.into_iter().peekable();
        if after
            .peek()
            .is_some_and(|w| w.contains('.') || w.contains(':'))
        {
            rule.netmask = after.next();
        }
        rule.method = after.next().unwrap_or_default();
        rule.options = after.collect();
    } else {
        rule.method = rest.next().unwrap_or_default();
        rule.options = rest.collect();
    }
    rule
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut facts = Facts {
        now: 1_800_000_000,
        ssl: data.first().is_some_and(|b| b & 1 == 1),
        ca_file_set: data.first().is_some_and(|b| b & 2 == 2),
        crl_set: data.first().is_some_and(|b| b & 4 == 4),
        ..Facts::default()
    };
    let mut settings = TlsSettings {
        version_num: 150_000,
        ssl: facts.ssl,
        ..TlsSettings::default()
    };
    for (index, line) in text.lines().enumerate() {
        let number = i32::try_from(index + 1).unwrap_or(i32::MAX);
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["error", ..] => facts.hba_errors.push((number, line.to_string())),
            ["set", name, value @ ..] => {
                let value = value.join(" ");
                match *name {
                    "version" => settings.version_num = value.parse().unwrap_or(0),
                    "groups" => settings.groups = value,
                    "tls13_ciphers" => settings.tls13_ciphers = value,
                    "ciphers" => settings.ciphers = value,
                    "min_protocol" => {
                        facts.min_protocol = value.clone();
                        settings.min_protocol = value;
                    }
                    "max_protocol" => settings.max_protocol = value,
                    "crl_file" => settings.crl_file = value,
                    "crl_dir" => settings.crl_dir = value,
                    _ => {}
                }
            }
            words => facts.hba.push(rule(number, words)),
        }
    }
    assert!(!evaluate(&facts).is_empty());
    assert_eq!(versions::evaluate(&settings).len(), 3);
    let _ = settings.describe();
});
