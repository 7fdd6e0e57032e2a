//! The report: every measurement as a Markdown table row, the targets the issue sets with
//! where this run stands, and a PNG chart of throughput, with machine, date, versions and
//! the command, so anyone can rerun it.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use plotters::prelude::*;

use crate::{load::LoadResult, options::Options};

/// One measurement.
pub struct Row {
    pub scenario: String,
    pub target: String,
    pub result: LoadResult,
    /// Peak RSS in bytes of each process under test, by name.
    pub peak_rss: Vec<(String, u64)>,
    /// CPU time each process under test spent per measured iteration (µs), by name: where
    /// a target's cost goes when throughput alone cannot say.
    pub cpu_per_iteration: Vec<(String, f64)>,
    /// Every round of this target, in the order the rounds ran (the row is the median
    /// one): what [`paired`] compares round by round.
    pub rounds: Vec<Round>,
}

/// One round of one target, as [`paired`] compares it.
#[derive(Debug, Clone)]
pub struct Round {
    pub throughput: f64,
    /// As [`Row::cpu_per_iteration`], in this round.
    pub cpu_per_iteration: Vec<(String, f64)>,
}

/// Two targets of one scenario compared round by round: the median over rounds of each
/// figure taken within one round. The two ran in the same round, a few seconds apart, so
/// a drift of this shared machine between rounds (seen here: the subgraphs, doing the
/// same work behind either router, costing up to 35 % more CPU per iteration from one
/// round to the next) cancels out of each round's figure, where it does not out of a
/// ratio of two medians taken from different rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Median of `ours ÷ theirs` throughput.
    pub throughput_ratio: f64,
    /// Median of `ours ÷ theirs` CPU per iteration of the processes only one of the two
    /// runs (the router under test): what the router itself costs. None when either has
    /// no such process, or it used no CPU.
    pub front_cpu_ratio: Option<f64>,
    /// The same for the processes both run (the subgraphs behind the router): about 1
    /// when they did the same work behind either, below 1 when ours spared them some (its
    /// response cache answering), and the size of the machine's drift within a round.
    pub shared_cpu_ratio: Option<f64>,
}

/// `ours` against `theirs`, round by round (see [`Paired`]); none unless both ran the same
/// number of rounds, at least one.
pub fn paired(ours: &Row, theirs: &Row) -> Option<Paired> {
    if ours.rounds.is_empty() || ours.rounds.len() != theirs.rounds.len() {
        return None;
    }
    let rounds = || ours.rounds.iter().zip(&theirs.rounds);
    let throughput = rounds()
        .map(|(ours, theirs)| ours.throughput / theirs.throughput.max(f64::MIN_POSITIVE))
        .collect();
    let cpu_ratio = |part: CpuPart| {
        rounds()
            .map(|(ours, theirs)| Some(cpu_of(ours, theirs, part)? / cpu_of(theirs, ours, part)?))
            .collect::<Option<Vec<f64>>>()
            .map(median)
    };
    Some(Paired {
        throughput_ratio: median(throughput),
        front_cpu_ratio: cpu_ratio(CpuPart::Front),
        shared_cpu_ratio: cpu_ratio(CpuPart::Shared),
    })
}

#[derive(Clone, Copy)]
enum CpuPart {
    /// The processes one round ran and the other did not.
    Front,
    /// The processes both rounds ran.
    Shared,
}

/// CPU per iteration of `part` of `round`'s processes, told apart by `other`'s; none when
/// that part is empty or idle.
fn cpu_of(round: &Round, other: &Round, part: CpuPart) -> Option<f64> {
    let total: f64 = round
        .cpu_per_iteration
        .iter()
        .filter(|(name, _)| {
            let shared = other.cpu_per_iteration.iter().any(|(known, _)| known == name);
            matches!(part, CpuPart::Shared) == shared
        })
        .map(|(_, micros)| micros)
        .sum();
    (total > 0.0).then_some(total)
}

/// The median of `values` (the mean of the middle two for an even count); `values` is
/// not empty.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

/// `1000000` → `1M`, `10000` → `10k`.
pub fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// What ran: the machine and every program's version.
pub struct Versions {
    pub machine: String,
    pub lines: Vec<(String, String)>,
}

impl Versions {
    pub async fn collect(options: &Options) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(0);
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .next()
                    .and_then(|line| line.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map(|kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
            .unwrap_or_default();
        let mut lines = vec![
            ("vitrina".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            ("Hive Router (library and stock binary)".to_owned(), "0.2.19".to_owned()),
            ("rustc".to_owned(), output_of("rustc", &["--version"]).await),
            (
                "cargo profile (Vitrina and the stock Hive Router)".to_owned(),
                build_profile(),
            ),
            ("PostgreSQL".to_owned(), output_of("psql", &["--version"]).await),
            ("Redis".to_owned(), output_of("redis-server", &["--version"]).await),
        ];
        if let Some(dir) = &options.gateway_dir {
            lines.push(("Node.js".to_owned(), output_of("node", &["--version"]).await));
            lines.push(("@apollo/gateway, @apollo/server".to_owned(), gateway_versions(dir)));
        }
        if let Some(nginx) = &options.nginx {
            lines.push((
                "nginx".to_owned(),
                output_of(&nginx.display().to_string(), &["-v"]).await,
            ));
        }
        Self {
            machine: format!("{cpu}, {cores} cores, {memory}"),
            lines,
        }
    }
}

/// The cargo profile the measured binaries were built with: the directory this harness
/// was built into, beside them (`production` from `scripts/bench.sh`).
fn build_profile() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.file_name()?.to_string_lossy().into_owned()))
        .map_or_else(|| "unknown".to_owned(), |profile| format!("`{profile}`"))
}

async fn output_of(program: &str, args: &[&str]) -> String {
    match tokio::process::Command::new(program).args(args).output().await {
        Ok(output) => {
            let text = if output.stdout.is_empty() {
                output.stderr
            } else {
                output.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        }
        Err(_) => "not found".to_owned(),
    }
}

/// "name value, name value, …": how the report and the progress lines give a figure per
/// process.
pub fn per_process<'a, N: std::fmt::Display + 'a, V: 'a>(
    figures: impl IntoIterator<Item = &'a (N, V)>,
    value: impl Fn(&V) -> String,
) -> String {
    figures
        .into_iter()
        .map(|(name, figure)| format!("{name} {}", value(figure)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn gateway_versions(dir: &Path) -> String {
    let lock: serde_json::Value = std::fs::read_to_string(dir.join("package-lock.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    ["@apollo/gateway", "@apollo/server"]
        .iter()
        .map(|name| {
            lock["packages"][format!("node_modules/{name}")]["version"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn find<'a>(rows: &'a [Row], scenario: &str, target: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|row| row.scenario.starts_with(scenario) && row.target == target)
}

/// A target line: what the issue asks, what this run measured, met or not.
fn target_line(out: &mut String, target: &str, measured: Option<(String, bool)>) {
    let (measured, verdict) = match measured {
        Some((measured, met)) => (measured, if met { "met" } else { "**not met**" }),
        None => ("not measured in this run".to_owned(), "—"),
    };
    let _ = writeln!(out, "| {target} | {measured} | {verdict} |");
}

pub fn write(
    options: &Options,
    rows: &[Row],
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
    versions: &Versions,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.out).with_context(|| format!("failed to create {}", options.out.display()))?;
    let name = options.report_name();
    let chart_name = format!("{name}.png");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Vitrina load report{}\n",
        if options.quick { " (quick mode)" } else { "" }
    );
    let _ = writeln!(
        out,
        "- Date: {} → {} (UTC)\n- Machine: {}\n- Command: `scripts/bench.sh{}`\n- Load: {} concurrent clients, closed loop, {} s warm-up + {} s measured; the targets of a scenario are measured in {} interleaved rounds, each starting once every process of the comparison is idle, and each row is its target's median round. The load generator shares the machine's cores with everything it measures.",
        started.format("%Y-%m-%d %H:%M:%S"),
        finished.format("%H:%M:%S"),
        versions.machine,
        options.arguments(),
        options.concurrency,
        options.warmup().as_secs(),
        options.measure().as_secs(),
        options.rounds(),
    );
    for (program, version) in &versions.lines {
        let _ = writeln!(out, "- {program}: {version}");
    }

    let _ = writeln!(out, "\n## Targets\n\n| target | this run | |\n|---|---|---|");
    targets(&mut out, rows, options.concurrency);

    let _ = writeln!(
        out,
        "\n## Measurements\n\n![throughput]({chart_name})\n\n| scenario | target | ok/s | p50 ms | p95 ms | p99 ms | max ms | errors | peak RSS (MB) | CPU per iteration (µs) |\n|---|---|---:|---:|---:|---:|---:|---:|---|---|"
    );
    for row in rows {
        let result = &row.result;
        let rss = per_process(&row.peak_rss, |bytes| format!("{:.0}", *bytes as f64 / 1e6));
        let cpu = per_process(&row.cpu_per_iteration, |micros| format!("{micros:.0}"));
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {rss} | {cpu} |",
            row.scenario,
            row.target,
            result.throughput(),
            result.ms(0.50),
            result.ms(0.95),
            result.ms(0.99),
            result.max_ms(),
            result.errors,
        );
    }
    let _ = writeln!(
        out,
        "\nScenarios: (a) `products(first: 20)` of one category, anonymous; (b) `product(id)` with availability and the client's guest cart (catalog ⨝ cart); (c) signed in: `me` + `myOrders(first: 10)`; (d) `addToCart` + `checkout` (outbox on; the real PayPal client calls the PayPal simulator, which runs as a process of its own where PayPal would be, so its memory and CPU are not the orders service's), one order per iteration; (e) 50 % a, 30 % b, 15 % c, 5 % d. Variables and callers vary per client and iteration."
    );
    let path = options.out.join(format!("{name}.md"));
    std::fs::write(&path, out).with_context(|| format!("failed to write {}", path.display()))?;
    chart(&options.out.join(&chart_name), rows)?;
    eprintln!("bench: report written to {}", path.display());
    Ok(())
}

fn targets(out: &mut String, rows: &[Row], concurrency: usize) {
    use crate::run::{
        BY_CATALOG_SIZE, DIRECT, GATEWAY, LISTING, LISTING_ONE_CLIENT, NGINX, OURS, OURS_UNCACHED, STOCK,
    };
    let hop = |scenario: &str| {
        find(rows, scenario, DIRECT)
            .zip(find(rows, scenario, OURS_UNCACHED))
            .map(|(direct, ours)| {
                let p50 = ours.result.ms(0.5) - direct.result.ms(0.5);
                let p99 = ours.result.ms(0.99) - direct.result.ms(0.99);
                (format!("p50 {p50:+.2} ms, p99 {p99:+.2} ms"), p50 <= 0.3 && p99 <= 1.0)
            })
    };
    target_line(
        out,
        "router hop at 1 client, nothing queued (a, response cache off): p50 ≤ 0.3 ms, p99 ≤ 1 ms",
        hop(LISTING_ONE_CLIENT),
    );
    let direct = find(rows, LISTING, DIRECT);
    let ours_a = find(rows, LISTING, OURS_UNCACHED);
    let nginx = find(rows, LISTING, NGINX);
    target_line(
        out,
        &format!(
            "router overhead over a direct subgraph call at {concurrency} clients (a, response cache off): p50 ≤ 0.3 ms, p99 ≤ 1 ms"
        ),
        hop(LISTING),
    );
    let within_nginx = "router hop within 2× the nginx hop (p50 added over direct)";
    match direct.zip(ours_a).zip(nginx) {
        // The direct call must be measurably faster than the nginx hop for a ratio to mean
        // anything; on a noisy machine it sometimes is not, and the report says so.
        Some(((direct, _), nginx)) if nginx.result.ms(0.5) - direct.result.ms(0.5) < 0.05 => {
            let _ = writeln!(
                out,
                "| {within_nginx} | inconclusive: the direct call ({:.2} ms p50) was not faster than through nginx ({:.2} ms) in this run | — |",
                direct.result.ms(0.5),
                nginx.result.ms(0.5),
            );
        }
        measured => target_line(
            out,
            within_nginx,
            measured.map(|((direct, ours), nginx)| {
                let ours = ours.result.ms(0.5) - direct.result.ms(0.5);
                let proxy = nginx.result.ms(0.5) - direct.result.ms(0.5);
                (
                    format!("router {ours:+.2} ms, nginx {proxy:+.2} ms ({:.1}×)", ours / proxy),
                    ours <= 2.0 * proxy,
                )
            }),
        ),
    }
    let scenarios: Vec<String> = rows
        .iter()
        .filter(|row| row.target == STOCK)
        .map(|row| row.scenario.clone())
        .collect();
    for scenario in scenarios {
        // The one-client listing measures our router with its response cache off only.
        let (ours, which) = match find(rows, &scenario, OURS) {
            Some(ours) => (Some(ours), ""),
            None => (
                find(rows, &scenario, OURS_UNCACHED),
                ", ours with its response cache off",
            ),
        };
        let stock = find(rows, &scenario, STOCK);
        target_line(
            out,
            &format!("{scenario}: ours ≥ 0.95× stock Hive Router throughput"),
            ours.zip(stock).and_then(|(ours, stock)| {
                let paired = paired(ours, stock)?;
                let medians = ours.result.throughput() / stock.result.throughput().max(f64::MIN_POSITIVE);
                let cpu = match (paired.front_cpu_ratio, paired.shared_cpu_ratio) {
                    (Some(router), Some(subgraphs)) => format!(
                        "; CPU per iteration: router {router:.2}× stock's, the subgraphs behind it {subgraphs:.2}×"
                    ),
                    _ => String::new(),
                };
                Some((
                    format!(
                        "{:.2}× (median of the rounds' ratios; ratio of the median rounds {medians:.2}×){cpu}{which}",
                        paired.throughput_ratio
                    ),
                    paired.throughput_ratio >= 0.95,
                ))
            }),
        );
    }
    let ours_b = find(rows, "b product page", OURS);
    let gateway_b = find(rows, "b product page", GATEWAY);
    target_line(
        out,
        "b: ours ≥ 5× Apollo Gateway throughput at equal or better p99",
        ours_b.zip(gateway_b).map(|(ours, gateway)| {
            let ratio = ours.result.throughput() / gateway.result.throughput().max(f64::MIN_POSITIVE);
            let p99 = (ours.result.ms(0.99), gateway.result.ms(0.99));
            (
                format!("{ratio:.2}×, p99 {:.2} vs {:.2} ms", p99.0, p99.1),
                ratio >= 5.0 && p99.0 <= p99.1,
            )
        }),
    );
    let by_size: Vec<&Row> = rows.iter().filter(|row| row.scenario == BY_CATALOG_SIZE).collect();
    target_line(
        out,
        "listing p99 at 1,000,000 products ≤ 1.5× p99 at 10,000",
        (by_size.len() == 2).then(|| {
            let (small, large) = (&by_size[0].result, &by_size[1].result);
            let ratio = large.ms(0.99) / small.ms(0.99).max(f64::MIN_POSITIVE);
            (
                format!("{:.2} ms vs {:.2} ms ({ratio:.2}×)", large.ms(0.99), small.ms(0.99)),
                ratio <= 1.5,
            )
        }),
    );
    let mut peaks: BTreeMap<&str, u64> = BTreeMap::new();
    for row in rows {
        for (name, bytes) in &row.peak_rss {
            let ours = ["router", "identity", "catalog", "cart", "orders"]
                .iter()
                .any(|prefix| name.starts_with(prefix));
            if ours {
                let peak = peaks.entry(name.as_str()).or_default();
                *peak = (*peak).max(*bytes);
            }
        }
    }
    target_line(
        out,
        "peak RSS under load: router ≤ 100 MB, each subgraph ≤ 100 MB",
        (!peaks.is_empty()).then(|| {
            let listed: Vec<(&str, u64)> = peaks.iter().map(|(name, bytes)| (*name, *bytes)).collect();
            let text = per_process(&listed, |bytes| format!("{:.0} MB", *bytes as f64 / 1e6));
            (text, peaks.values().all(|bytes| *bytes <= 100_000_000))
        }),
    );
    let checkout = find(rows, "d checkout", OURS);
    target_line(
        out,
        "checkout (d): ≥ 200 orders/s sustained, outbox on, no errors",
        checkout.map(|row| {
            (
                format!("{:.0} orders/s, {} errors", row.result.throughput(), row.result.errors),
                row.result.throughput() >= 200.0 && row.result.errors == 0,
            )
        }),
    );
}

/// Throughput of every measurement, one bar each, grouped by scenario.
fn chart(path: &Path, rows: &[Row]) -> anyhow::Result<()> {
    register_font()?;
    let height = 120 + 28 * rows.len() as u32;
    let root = BitMapBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = rows.iter().map(|row| row.result.throughput()).fold(1.0_f64, f64::max) * 1.15;
    let labels: Vec<String> = rows
        .iter()
        .map(|row| format!("{} · {}", row.scenario, row.target))
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput (successful iterations/s, higher is better)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(520)
        .build_cartesian_2d(0.0..max, (0..rows.len()).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows.len())
        .y_label_formatter(&|segment| match segment {
            SegmentValue::CenterOf(index) | SegmentValue::Exact(index) => {
                labels.get(*index).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .label_style(("sans-serif", 14))
        .draw()?;
    let colour = |target: &str| match target {
        t if t.starts_with("vitrina router") => RGBColor(0x2b, 0x6c, 0xb0),
        t if t.starts_with("stock") => RGBColor(0x7a, 0x9c, 0xc6),
        t if t.starts_with("Apollo") => RGBColor(0xd6, 0x6a, 0x2b),
        t if t.starts_with("nginx") => RGBColor(0x55, 0x99, 0x55),
        _ => RGBColor(0x88, 0x88, 0x88),
    };
    chart.draw_series(rows.iter().enumerate().map(|(index, row)| {
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(index)),
                (row.result.throughput(), SegmentValue::Exact(index + 1)),
            ],
            colour(&row.target).filled(),
        );
        bar.set_margin(4, 4, 0, 0);
        bar
    }))?;
    root.present()?;
    Ok(())
}

/// plotters draws text with a TrueType font it is given: DejaVu Sans from Debian's
/// `fonts-dejavu-core`.
fn register_font() -> anyhow::Result<()> {
    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let bytes = std::fs::read(FONT).with_context(|| format!("the chart needs {FONT} (Debian: fonts-dejavu-core)"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{FONT} is not a usable font"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hdrhistogram::Histogram;

    use super::*;

    fn row(rounds: &[(f64, &[(&str, f64)])]) -> Row {
        let rounds: Vec<Round> = rounds
            .iter()
            .map(|(throughput, cpu)| Round {
                throughput: *throughput,
                cpu_per_iteration: cpu.iter().map(|(name, micros)| ((*name).to_owned(), *micros)).collect(),
            })
            .collect();
        Row {
            scenario: "c me + myOrders".to_owned(),
            target: "any".to_owned(),
            result: LoadResult {
                iterations: 0,
                errors: 0,
                elapsed: Duration::from_secs(1),
                latency: Histogram::new(3).unwrap(),
                first_error: None,
                error_kinds: BTreeMap::new(),
            },
            peak_rss: Vec::new(),
            cpu_per_iteration: Vec::new(),
            rounds,
        }
    }

    #[test]
    fn the_paired_ratio_follows_each_round_and_shrugs_off_one_bad_round() {
        // The machine runs at 1×, 2× and 0.5× speed in the three rounds, and ours serves
        // 0.9× stock's throughput in each; one of stock's rounds also lost 20 % to
        // something else. The medians would compare ours' 900 with that 800 (1.125×);
        // each round pairs like with like, and the median of the rounds says 0.9×.
        let ours = row(&[(900.0, &[]), (1800.0, &[]), (450.0, &[])]);
        let stock = row(&[(800.0, &[]), (2000.0, &[]), (500.0, &[])]);
        let paired = paired(&ours, &stock).unwrap();
        assert!((paired.throughput_ratio - 0.9).abs() < 1e-9, "{paired:?}");
        assert_eq!((paired.front_cpu_ratio, paired.shared_cpu_ratio), (None, None));
    }

    #[test]
    fn the_router_and_the_subgraphs_behind_it_are_compared_apart_round_by_round() {
        // Round 1: ours costs 1.1× stock's router CPU and its subgraphs the same; round 2:
        // the machine is slower for everyone, and ours spared the subgraphs a fifth.
        let ours = row(&[
            (1.0, &[("catalog", 200.0), ("orders", 300.0), ("router", 110.0)]),
            (1.0, &[("catalog", 320.0), ("orders", 480.0), ("router", 220.0)]),
        ]);
        let stock = row(&[
            (1.0, &[("catalog", 200.0), ("orders", 300.0), ("stock", 100.0)]),
            (1.0, &[("catalog", 400.0), ("orders", 600.0), ("stock", 200.0)]),
        ]);
        let paired = paired(&ours, &stock).unwrap();
        assert!((paired.front_cpu_ratio.unwrap() - 1.1).abs() < 1e-9, "{paired:?}");
        assert!((paired.shared_cpu_ratio.unwrap() - 0.9).abs() < 1e-9, "{paired:?}");
    }

    #[test]
    fn targets_with_different_rounds_are_not_paired() {
        let ours = row(&[(1.0, &[]), (1.0, &[])]);
        let stock = row(&[(1.0, &[])]);
        assert_eq!(paired(&ours, &stock), None);
        assert_eq!(paired(&row(&[]), &row(&[])), None);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    }
}
