//! The server's counters: takes what each request did and gives the Prometheus text format
//! (version 0.0.4) for `GET /metrics`: requests by model and status, a latency histogram,
//! rows predicted, model calls and their rows, unseen categories per column, rejected inputs
//! by reason.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct State {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    rows: BTreeMap<String, u64>,
    calls: BTreeMap<String, (u64, u64)>,
    unseen: BTreeMap<(String, String), u64>,
    rejected: BTreeMap<(String, String), u64>,
}

/// Every counter, behind one lock (updates are a few map operations per request).
#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut g = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// A finished request: its model (`-` when none), status and time taken.
    pub fn request(&self, model: &str, status: u16, took: Duration) {
        self.with(|s| {
            *s.requests.entry((model.to_string(), status)).or_default() += 1;
            let h = s.latency.entry(model.to_string()).or_default();
            if h.counts.is_empty() {
                h.counts = vec![0; BUCKETS.len()];
            }
            let secs = took.as_secs_f64();
            for (c, le) in h.counts.iter_mut().zip(BUCKETS) {
                if secs <= *le {
                    *c += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        });
    }

    pub fn rows(&self, model: &str, n: usize) {
        self.with(|s| *s.rows.entry(model.to_string()).or_default() += n as u64);
    }

    /// One call of a model's executable over `rows` rows.
    pub fn call(&self, model: &str, rows: usize) {
        self.with(|s| {
            let c = s.calls.entry(model.to_string()).or_default();
            c.0 += 1;
            c.1 += rows as u64;
        });
    }

    pub fn unseen(&self, model: &str, column: &str) {
        self.with(|s| {
            *s.unseen
                .entry((model.to_string(), column.to_string()))
                .or_default() += 1;
        });
    }

    pub fn rejected(&self, model: &str, reason: &str) {
        self.with(|s| {
            *s.rejected
                .entry((model.to_string(), reason.to_string()))
                .or_default() += 1;
        });
    }

    /// The Prometheus text exposition of every counter; `info` lines describe the models.
    pub fn render(&self, info: &[(String, String, String)]) -> String {
        let mut o = String::new();
        let q = label;
        o.push_str("# HELP mlx_model_info A served model: its train, mlx version and program hash.\n# TYPE mlx_model_info gauge\n");
        for (model, version, program) in info {
            let _ = writeln!(
                o,
                "mlx_model_info{{model=\"{}\",mlx_version=\"{}\",program=\"{}\"}} 1",
                q(model),
                q(version),
                q(program)
            );
        }
        self.with(|s| {
            o.push_str("# HELP mlx_requests_total HTTP requests by model and status code.\n# TYPE mlx_requests_total counter\n");
            for ((m, code), n) in &s.requests {
                let _ = writeln!(
                    o,
                    "mlx_requests_total{{model=\"{}\",code=\"{code}\"}} {n}",
                    q(m)
                );
            }
            o.push_str("# HELP mlx_request_duration_seconds Time from a request's arrival to its answer.\n# TYPE mlx_request_duration_seconds histogram\n");
            for (m, h) in &s.latency {
                for (c, le) in h.counts.iter().zip(BUCKETS) {
                    let _ = writeln!(
                        o,
                        "mlx_request_duration_seconds_bucket{{model=\"{}\",le=\"{le}\"}} {c}",
                        q(m)
                    );
                }
                let _ = writeln!(
                    o,
                    "mlx_request_duration_seconds_bucket{{model=\"{}\",le=\"+Inf\"}} {}",
                    q(m),
                    h.count
                );
                let _ = writeln!(
                    o,
                    "mlx_request_duration_seconds_sum{{model=\"{}\"}} {}",
                    q(m),
                    h.sum
                );
                let _ = writeln!(
                    o,
                    "mlx_request_duration_seconds_count{{model=\"{}\"}} {}",
                    q(m),
                    h.count
                );
            }
            o.push_str("# HELP mlx_rows_predicted_total Rows answered with a prediction.\n# TYPE mlx_rows_predicted_total counter\n");
            for (m, n) in &s.rows {
                let _ = writeln!(o, "mlx_rows_predicted_total{{model=\"{}\"}} {n}", q(m));
            }
            o.push_str("# HELP mlx_model_calls_total Calls of a model's compiled program (each serves a batch of requests).\n# TYPE mlx_model_calls_total counter\n");
            for (m, (n, _)) in &s.calls {
                let _ = writeln!(o, "mlx_model_calls_total{{model=\"{}\"}} {n}", q(m));
            }
            o.push_str("# HELP mlx_model_call_rows_total Rows run by those calls.\n# TYPE mlx_model_call_rows_total counter\n");
            for (m, (_, r)) in &s.calls {
                let _ = writeln!(o, "mlx_model_call_rows_total{{model=\"{}\"}} {r}", q(m));
            }
            o.push_str("# HELP mlx_unseen_categories_total Category values never seen in training, by column.\n# TYPE mlx_unseen_categories_total counter\n");
            for ((m, c), n) in &s.unseen {
                let _ = writeln!(
                    o,
                    "mlx_unseen_categories_total{{model=\"{}\",column=\"{}\"}} {n}",
                    q(m),
                    q(c)
                );
            }
            o.push_str("# HELP mlx_rejected_inputs_total Requests refused for their input, by reason.\n# TYPE mlx_rejected_inputs_total counter\n");
            for ((m, r), n) in &s.rejected {
                let _ = writeln!(
                    o,
                    "mlx_rejected_inputs_total{{model=\"{}\",reason=\"{}\"}} {n}",
                    q(m),
                    q(r)
                );
            }
        });
        o
    }
}

/// A label value escaped for the text format.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.request("a", 200, Duration::from_micros(300));
        m.request("a", 200, Duration::from_millis(20));
        m.request("a", 400, Duration::from_millis(2));
        m.rows("a", 7);
        m.unseen("a", "is\"land");
        m.rejected("a", "wrong_type");
        let t = m.render(&[("a".into(), "0.1.0".into(), "sha256:ab".into())]);
        assert!(
            t.contains("mlx_requests_total{model=\"a\",code=\"200\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("mlx_requests_total{model=\"a\",code=\"400\"} 1\n"),
            "{t}"
        );
        assert!(t.contains("le=\"0.0005\"} 1\n"), "{t}");
        assert!(t.contains("le=\"0.0025\"} 2\n"), "{t}");
        assert!(t.contains("le=\"0.025\"} 3\n"), "{t}");
        assert!(t.contains("le=\"+Inf\"} 3\n"), "{t}");
        assert!(
            t.contains("mlx_rows_predicted_total{model=\"a\"} 7\n"),
            "{t}"
        );
        assert!(t.contains("column=\"is\\\"land\"} 1\n"), "{t}");
        assert!(t.contains("reason=\"wrong_type\"} 1\n"), "{t}");
    }
}
