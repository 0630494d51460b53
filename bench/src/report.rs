//! Collects runs, computes medians and ratios, writes the JSON and prints
//! the table.

use crate::scenarios::Scenario;
use crate::servers::Kind;
use crate::stats::median;
use serde_json::{json, Map, Value};

/// Every run of one scenario.
#[derive(Debug)]
pub struct ScenarioResult {
    /// The scenario.
    pub scenario: Scenario,
    /// Per server, one entry per successful round: a value per metric.
    pub runs: Vec<(Kind, Vec<Vec<f64>>)>,
    /// Failed runs: server, round, error.
    pub errors: Vec<(Kind, usize, String)>,
}

impl ScenarioResult {
    /// An empty result for `scenario`.
    pub fn new(scenario: Scenario) -> Self {
        ScenarioResult {
            scenario,
            runs: scenario.servers.iter().map(|&k| (k, Vec::new())).collect(),
            errors: Vec::new(),
        }
    }

    /// Records the outcome of one run.
    pub fn record(&mut self, kind: Kind, round: usize, outcome: Result<Vec<f64>, String>) {
        match outcome {
            Ok(values) => {
                if let Some((_, runs)) = self.runs.iter_mut().find(|(k, _)| *k == kind) {
                    runs.push(values);
                }
            }
            Err(e) => self.errors.push((kind, round, e)),
        }
    }

    /// Median of metric `m` for `kind` (NaN without runs).
    pub fn median(&self, kind: Kind, m: usize) -> f64 {
        self.runs
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(f64::NAN, |(_, runs)| {
                median(
                    &runs
                        .iter()
                        .filter_map(|r| r.get(m).copied())
                        .collect::<Vec<_>>(),
                )
            })
    }
}

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

fn ratio(a: f64, b: f64) -> Value {
    if a.is_finite() && b.is_finite() && b != 0.0 {
        num(a / b)
    } else {
        Value::Null
    }
}

/// The whole report as JSON.
pub fn to_json(results: &[ScenarioResult], meta: Value) -> Value {
    let scenarios: Vec<Value> = results
        .iter()
        .map(|r| {
            let metrics: Vec<Value> = r
                .scenario
                .metrics
                .iter()
                .enumerate()
                .map(|(m, metric)| {
                    let axum = r.median(Kind::Axum, m);
                    let hyper = r.median(Kind::Hyper, m);
                    let tuned = r.median(Kind::AxumTuned, m);
                    let mut servers = Map::new();
                    for (kind, runs) in &r.runs {
                        let med = r.median(*kind, m);
                        let runs: Vec<Value> = runs
                            .iter()
                            .filter_map(|v| v.get(m))
                            .map(|&x| num(x))
                            .collect();
                        servers.insert(
                            kind.name().into(),
                            json!({
                                "runs": runs,
                                "median": num(med),
                                "vs_axum": ratio(med, axum),
                                "vs_hyper": ratio(med, hyper),
                                "vs_axum_tuned": ratio(med, tuned),
                            }),
                        );
                    }
                    json!({
                        "name": metric.name,
                        "unit": metric.unit,
                        "higher_is_better": metric.higher_is_better,
                        "servers": servers,
                    })
                })
                .collect();
            let errors: Vec<Value> = r
                .errors
                .iter()
                .map(|(k, round, e)| json!({"server": k.name(), "round": round, "error": e}))
                .collect();
            json!({
                "id": r.scenario.id,
                "title": r.scenario.title,
                "servers": r.scenario.servers.iter().map(|k| k.name()).collect::<Vec<_>>(),
                "metrics": metrics,
                "errors": errors,
            })
        })
        .collect();
    json!({ "meta": meta, "scenarios": scenarios })
}

fn human(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.abs() >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x.abs() >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.3}")
    }
}

/// Prints one line per metric: medians, then rill's ratios.
pub fn print_table(results: &[ScenarioResult]) {
    println!(
        "\n{:<44} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}",
        "scenario.metric",
        "rill",
        "axum",
        "hyper",
        "axum_tuned",
        "rill/axum",
        "rill/hyper",
        "rill/tuned"
    );
    for r in results {
        for (m, metric) in r.scenario.metrics.iter().enumerate() {
            let (rill, axum, hyper, tuned) = (
                r.median(Kind::Rill, m),
                r.median(Kind::Axum, m),
                r.median(Kind::Hyper, m),
                r.median(Kind::AxumTuned, m),
            );
            let fmt_ratio = |a: f64, b: f64| {
                if a.is_finite() && b.is_finite() && b != 0.0 {
                    format!("{:.2}", a / b)
                } else {
                    "-".into()
                }
            };
            println!(
                "{:<44} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9}",
                format!("{}.{} ({})", r.scenario.id, metric.name, metric.unit),
                human(rill),
                human(axum),
                human(hyper),
                human(tuned),
                fmt_ratio(rill, axum),
                fmt_ratio(rill, hyper),
                fmt_ratio(rill, tuned)
            );
        }
        for (k, round, e) in &r.errors {
            println!("  ! {} round {round}: {e}", k.name());
        }
    }
}
