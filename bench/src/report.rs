//! Figures, ratios and targets, and the Markdown they end up in.
//!
//! Every figure is a set of samples, one per round; rounds interleave the
//! contenders, so that drift on a shared machine hits all of them alike.
//! Ratios are between medians of the same run.

use std::fmt::Write as _;

use crate::memory::Growth;

/// Median, minimum and maximum of the samples of one figure.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl Stats {
    /// The statistics of `samples` (at least one).
    pub fn of(samples: &[f64]) -> Stats {
        assert!(!samples.is_empty(), "a figure without samples");
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Stats {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        }
    }
}

/// A goal from the issue, with what was measured against it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The goal, e.g. `≥ 1.3× libpq`.
    pub goal: String,
    /// The measured value in the goal's terms, e.g. `1.42×`.
    pub measured: String,
    /// Whether the goal is met.
    pub met: bool,
}

impl Target {
    /// `value` must be at least `goal` (`value` and `goal` in the same unit).
    pub fn at_least(goal_text: &str, value: f64, goal: f64, unit: &str) -> Target {
        Target {
            goal: goal_text.into(),
            measured: format!("{}{unit}", fmt_num(value)),
            met: value >= goal,
        }
    }

    /// `value` must be at most `goal`.
    pub fn at_most(goal_text: &str, value: f64, goal: f64, unit: &str) -> Target {
        Target {
            goal: goal_text.into(),
            measured: format!("{}{unit}", fmt_num(value)),
            met: value <= goal,
        }
    }
}

/// One line of a section's table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Its figures.
    pub stats: Stats,
    /// The ratio of medians against a reference named in the text, e.g. `1.42× libpq`.
    pub ratio: Option<String>,
    /// The issue's goals for this row.
    pub targets: Vec<Target>,
}

impl Row {
    /// A row without ratio or target.
    pub fn new(name: impl Into<String>, samples: &[f64]) -> Row {
        Row {
            name: name.into(),
            stats: Stats::of(samples),
            ratio: None,
            targets: vec![],
        }
    }
}

/// One comparison: a table with a heading and a line of explanation.
#[derive(Debug, Clone)]
pub struct Section {
    /// The heading.
    pub title: String,
    /// What the rows measure and how; Markdown.
    pub intro: String,
    /// The unit of median, min and max.
    pub unit: String,
    /// The rows.
    pub rows: Vec<Row>,
}

impl Section {
    /// An empty section.
    pub fn new(title: &str, unit: &str, intro: &str) -> Section {
        Section {
            title: title.into(),
            intro: intro.into(),
            unit: unit.into(),
            rows: vec![],
        }
    }

    /// The row named `name`; panics when absent (a bug in the benchmark).
    pub fn row(&self, name: &str) -> &Row {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no row {name:?} in {:?}", self.title))
    }

    /// The median of the row named `name`.
    pub fn median(&self, name: &str) -> f64 {
        self.row(name).stats.median
    }

    /// The row named `name`, to attach a ratio or targets to.
    pub fn row_mut(&mut self, name: &str) -> &mut Row {
        let title = self.title.clone();
        self.rows
            .iter_mut()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no row {name:?} in {title:?}"))
    }
}

/// Three significant digits, thousands separated: `1,234`, `56.7`, `0.891`.
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let abs = x.abs();
    let decimals = if abs >= 100.0 {
        0
    } else if abs >= 10.0 {
        1
    } else if abs >= 1.0 {
        2
    } else {
        3
    };
    let text = format!("{x:.decimals$}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// `a / b` as `1.42×`.
pub fn ratio_text(a: f64, b: f64, against: &str) -> String {
    format!("{}× {against}", fmt_num(a / b))
}

/// The whole report: machine line, how to run, one table per section, and the
/// targets gathered in one table at the end.
pub fn markdown(header: &[String], sections: &[Section], memory: &[Growth]) -> String {
    let mut md = String::from("# Benchmarks\n\n");
    for line in header {
        let _ = writeln!(md, "{line}  ");
    }
    md.push('\n');
    md.push_str(HOW_TO_RUN);
    for s in sections {
        let _ = writeln!(md, "\n## {}\n\n{}\n", s.title, s.intro.trim());
        let _ = writeln!(
            md,
            "| | median ({u}) | min | max | ratio | target | |",
            u = s.unit
        );
        md.push_str("|---|--:|--:|--:|--:|---|---|\n");
        for r in &s.rows {
            let goals: Vec<String> = r
                .targets
                .iter()
                .map(|t| format!("{} (measured {})", t.goal, t.measured))
                .collect();
            let verdicts: Vec<&str> = r.targets.iter().map(|t| verdict(t.met)).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.name,
                fmt_num(r.stats.median),
                fmt_num(r.stats.min),
                fmt_num(r.stats.max),
                r.ratio.as_deref().unwrap_or(""),
                goals.join("<br>"),
                verdicts.join("<br>"),
            );
        }
    }
    md.push_str(MEMORY_INTRO);
    md.push_str(
        "| | VmRSS before (KiB) | after | growth | RssAnon before (KiB) | after | growth | target | |\n\
         |---|--:|--:|--:|--:|--:|--:|---|---|\n",
    );
    for g in memory {
        let (goal, verdict_text) = match g.target() {
            Some(t) => (t.goal, verdict(t.met)),
            None => (String::new(), ""),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:+} | {} | {} | {:+} | {goal} | {verdict_text} |",
            g.what,
            g.before.total_kib,
            g.after.total_kib,
            g.total_kib(),
            g.before.anon_kib,
            g.after.anon_kib,
            g.anon_kib(),
        );
    }
    md.push_str("\n## Targets\n\n| section | row | target | measured | |\n|---|---|---|---|---|\n");
    for s in sections {
        for r in &s.rows {
            for t in &r.targets {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    s.title,
                    r.name,
                    t.goal,
                    t.measured,
                    verdict(t.met)
                );
            }
        }
    }
    for g in memory {
        if let Some(t) = g.target() {
            let _ = writeln!(
                md,
                "| 5. Memory | {} | {} | {} | {} |",
                g.what,
                t.goal,
                t.measured,
                verdict(t.met)
            );
        }
    }
    md
}

const MEMORY_INTRO: &str = "
## 5. Memory

Resident set from `/proc/<pid>/status`, before each loop (after a warm-up) and
after it. `VmRSS` also counts shared-buffer pages the backend touched for the
first time (the registry rows of the signings land there), which is not a
leak; `RssAnon` is the process's private memory, where a leak shows, and is
what the target is judged on.

";

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "**missed**"
    }
}

const HOW_TO_RUN: &str = "\
How to run, after `scripts/setup.sh`, with the extension's release build
(`cargo pgrx install` builds the dev profile, whose session functions are
five to ten times slower and whose signing is slower too; the header above
says which build the server loaded):

```
(cd pgssl_ext && cargo pgrx install --release --pg-config /usr/lib/postgresql/15/bin/pg_config)
cargo run --release -p pgssl_bench             # full run (about 20 minutes), rewrites this file
cargo run -p pgssl_bench -- --quick            # smoke run (CI, under a minute once built); prints, writes nothing
cargo run -p pgssl_bench -- --quick --out F    # smoke run, Markdown to F
```

One throwaway TLS cluster (PostgreSQL 15 on 127.0.0.1, `fsync = off`) serves
every comparison of one run. Where the machine has two cores or more, the
server (the postmaster and every backend it forks) runs on the last core and
this client with pgbench and openssl on the others (the header says so). Each
figure is the median of several rounds, with the smallest and largest round
beside it as the spread; rounds interleave the contenders (each round starting
with another one), so that drift on a shared machine hits them alike. Ratios
are between medians of the same run; absolute figures from a shared, noisy
machine are only indicative. Section 6 repeats the in-backend comparisons as
instruction counts (callgrind, full runs with valgrind installed), which do
not move with the machine's load. Targets are the goals of issue 14, not test
assertions. The run exits non-zero only when a comparison cannot run, never on
a timing.
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let s = Stats::of(&[3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Stats::of(&[4.0, 1.0, 2.0, 3.0]).median, 2.5);
    }

    #[test]
    fn rounds_rotate_the_order() {
        let items = [1, 2, 3];
        let order = |r| {
            crate::connect::rotated(&items, r)
                .copied()
                .collect::<Vec<_>>()
        };
        assert_eq!(order(0), [1, 2, 3]);
        assert_eq!(order(1), [2, 3, 1]);
        assert_eq!(order(4), [2, 3, 1]);
    }

    #[test]
    fn numbers_keep_three_significant_digits() {
        assert_eq!(fmt_num(1234.4), "1,234");
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(56.78), "56.8");
        assert_eq!(fmt_num(1.234), "1.23");
        assert_eq!(fmt_num(0.8912), "0.891");
        assert_eq!(fmt_num(-250.0), "-250");
    }
}
