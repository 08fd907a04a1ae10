//! Data where it lives: penguins as Parquet (pandas' defaults; plain encoding, zstd, seven row
//! groups), as a SQLite table and as a PostgreSQL table train the same run as the CSV; a
//! changed row makes `mlx verify` refuse, naming the source; bad sources are diagnostics at
//! their line. PostgreSQL needs a server: `.ci/run` starts one and sets `MLX_PG_URL` (a URL
//! without password) and `PGPASSWORD`; elsewhere that test skips with a notice unless
//! `MLX_REQUIRE_POSTGRES` is set.

use crate::reproduce::{assert_same_run, last_line, mlx, stderr};
use crate::run::out_dir;
use std::path::{Path, PathBuf};
use std::process::Output;

const CSV_SOURCE: &str = "csv(\"data/penguins.csv\", missing: \"NA\")";

/// `examples/penguins.mlx` with its source replaced, written into `dir`.
fn penguins_with(dir: &Path, name: &str, source: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let text = std::fs::read_to_string(crate::root().join("examples/penguins.mlx")).unwrap();
    assert!(text.contains(CSV_SOURCE));
    let p = dir.join(name);
    std::fs::write(&p, text.replace(CSV_SOURCE, source)).unwrap();
    p
}

fn train(file: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = mlx();
    c.arg("run")
        .arg(file)
        .args(["--set", "epochs=15", "-q", "--no-plot", "--out"])
        .arg(out);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn reference(work: &Path) -> PathBuf {
    let o = train(
        &crate::root().join("examples/penguins.mlx"),
        &work.join("csv"),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    last_line(&o)
}

fn abs(p: &str) -> String {
    crate::root().join(p).display().to_string()
}

#[test]
fn penguins_as_parquet_train_the_run_of_the_csv() {
    let work = out_dir("sources-parquet");
    let csv = reference(&work);
    for (i, file) in [
        // pandas' defaults: snappy, dictionary-encoded, one row group.
        "examples/data/penguins.parquet",
        // pyarrow: plain encoding, zstd, row groups of 50 rows, nullable integer columns.
        "tests/data/penguins_plain.parquet",
        // pyarrow: decimals (fixed-length bytes), int32 and int16, large strings, a dictionary
        // array, gzip, row groups of 100 rows.
        "tests/data/penguins_decimal.parquet",
    ]
    .iter()
    .enumerate()
    {
        let spec = penguins_with(
            &work,
            &format!("p{i}.mlx"),
            &format!("parquet(\"{}\")", abs(file)),
        );
        let o = train(&spec, &work.join(format!("p{i}")), &[]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        assert_same_run(&csv, &last_line(&o));
    }
}

/// The penguins CSV as rows of typed values (NA as NULL).
fn penguin_rows() -> Vec<Vec<Option<String>>> {
    let text = std::fs::read_to_string(crate::root().join("examples/data/penguins.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|v| (v != "NA").then(|| v.to_string()))
                .collect()
        })
        .collect()
}

const COLUMNS: &str = "species TEXT, island TEXT, bill_length_mm REAL, bill_depth_mm REAL, \
                       flipper_length_mm INTEGER, body_mass_g INTEGER, sex TEXT, year INTEGER";

fn sqlite_penguins(path: &Path) {
    let _ = std::fs::remove_file(path);
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute(&format!("CREATE TABLE penguins ({COLUMNS})"), [])
        .unwrap();
    let mut insert = c
        .prepare("INSERT INTO penguins VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
        .unwrap();
    for r in penguin_rows() {
        use rusqlite::types::Value;
        let v = |j: usize, kind: char| -> Value {
            match (&r[j], kind) {
                (None, _) => Value::Null,
                (Some(s), 'r') => Value::Real(s.parse().unwrap()),
                (Some(s), 'i') => Value::Integer(s.parse().unwrap()),
                (Some(s), _) => Value::Text(s.clone()),
            }
        };
        let kinds = ['t', 't', 'r', 'r', 'i', 'i', 't', 'i'];
        let vals: Vec<Value> = (0..8).map(|j| v(j, kinds[j])).collect();
        insert
            .execute(rusqlite::params_from_iter(vals.iter()))
            .unwrap();
    }
}

#[test]
fn penguins_as_a_sqlite_table_train_the_run_of_the_csv_and_verify_names_a_changed_row() {
    let work = out_dir("sources-sqlite");
    let csv = reference(&work);
    std::fs::create_dir_all(work.join("data")).unwrap();
    sqlite_penguins(&work.join("data/penguins.db"));
    // A relative database path is the .mlx file's, like a CSV path.
    let spec = penguins_with(
        &work,
        "sq.mlx",
        "sql(\"sqlite:data/penguins.db\", query: \"SELECT * FROM penguins; -- every row\")",
    );
    let o = train(&spec, &work.join("sq"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = last_line(&o);
    assert_same_run(&csv, &run);
    let lock = std::fs::read_to_string(run.join("mlx.lock")).unwrap();
    assert!(lock.contains("SELECT * FROM penguins;"), "{lock}");
    // Without `dedup`, Parquet and SQL rows are loaded in chunks as they are read: the same
    // run as the CSV without `dedup`.
    let no_dedup = |src: &str, name: &str| {
        let p = penguins_with(&work, name, src);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("dedup  = true"));
        std::fs::write(&p, text.replace("dedup  = true", "dedup  = false")).unwrap();
        let o = train(&p, &work.join(format!("{name}.runs")), &[]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        last_line(&o)
    };
    let csv_all = no_dedup(
        &format!(
            "csv(\"{}\", missing: \"NA\")",
            abs("examples/data/penguins.csv")
        ),
        "csv_all.mlx",
    );
    for (src, name) in [
        (
            "sql(\"sqlite:data/penguins.db\", query: \"SELECT * FROM penguins\")".to_string(),
            "sq_all.mlx",
        ),
        (
            format!("parquet(\"{}\")", abs("tests/data/penguins_plain.parquet")),
            "pq_all.mlx",
        ),
    ] {
        assert_same_run(&csv_all, &no_dedup(&src, name));
    }
    let v = mlx().arg("verify").arg(&run).arg("-q").output().unwrap();
    assert!(v.status.success(), "{}", stderr(&v));
    // One row changed: verify names the source and refuses.
    let c = rusqlite::Connection::open(work.join("data/penguins.db")).unwrap();
    c.execute(
        "UPDATE penguins SET bill_length_mm = 41.5 WHERE rowid = 7",
        [],
    )
    .unwrap();
    drop(c);
    let v = mlx().arg("verify").arg(&run).output().unwrap();
    assert_eq!(v.status.code(), Some(1), "{}", stderr(&v));
    let err = stderr(&v);
    assert!(err.contains("mlx::lock::data"), "{err}");
    assert!(
        err.contains(&format!(
            "the rows of the SQL source sqlite:{}",
            work.join("data/penguins.db").display()
        )),
        "{err}"
    );
    assert!(err.contains("have changed since the run"), "{err}");
}

fn check(spec: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = mlx();
    c.arg("check").arg(spec);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The diagnostic's line of the spec is shown (miette's snippet), with the label.
fn assert_at(o: &Output, code: &str, line: &str, label: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(code), "{err}");
    assert!(err.contains(line), "{err}");
    assert!(err.contains(label), "{err}");
}

#[test]
fn bad_parquet_and_sql_sources_are_diagnostics_at_their_line() {
    let work = out_dir("sources-bad");
    // A column of a type mlx does not read, used as a feature: at the feature's line.
    let ts = abs("tests/data/penguins_timestamp.parquet");
    let spec = penguins_with(&work, "ts.mlx", &format!("parquet(\"{ts}\")"));
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "    sex:               Category = impute(mode) |> one_hot",
        "    sex:               Category = impute(mode) |> one_hot\n    measured_at:       Float    = standardize",
    );
    std::fs::write(&spec, text).unwrap();
    let o = check(&spec, &[]);
    assert_at(
        &o,
        "mlx::data::column_type",
        "measured_at:       Float",
        "a column mlx cannot read",
    );
    assert!(stderr(&o).contains("TIMESTAMP"), "{}", stderr(&o));
    // Unused, it is no error.
    let spec = penguins_with(&work, "ts_unused.mlx", &format!("parquet(\"{ts}\")"));
    let o = check(&spec, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A truncated Parquet file.
    let bytes = std::fs::read(crate::root().join("examples/data/penguins.parquet")).unwrap();
    let cut = work.join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let spec = penguins_with(&work, "cut.mlx", &format!("parquet(\"{}\")", cut.display()));
    assert_at(
        &check(&spec, &[]),
        "mlx::data::malformed",
        "source = parquet(",
        "cannot read this file",
    );
    // Not a Parquet file at all.
    let spec = penguins_with(
        &work,
        "csv_as_parquet.mlx",
        &format!("parquet(\"{}\")", abs("examples/data/penguins.csv")),
    );
    let o = check(&spec, &[]);
    assert_at(
        &o,
        "mlx::data::malformed",
        "source = parquet(",
        "cannot read",
    );
    // A missing file.
    let spec = penguins_with(&work, "missing.mlx", "parquet(\"nope.parquet\")");
    assert_at(
        &check(&spec, &[]),
        "mlx::data::file_missing",
        "nope.parquet",
        "no such file",
    );
    // SQL: a query naming a missing column, a missing table, a syntax error: at the query.
    let db = work.join("penguins.db");
    sqlite_penguins(&db);
    for (query, message) in [
        ("SELECT species, nope FROM penguins", "no such column: nope"),
        ("SELECT * FROM pengwins", "no such table: pengwins"),
        ("SELEC * FROM penguins", "syntax error"),
        ("DELETE FROM penguins", "would change the database"),
    ] {
        let spec = penguins_with(
            &work,
            "q.mlx",
            &format!("sql(\"sqlite:{}\", query: \"{query}\")", db.display()),
        );
        let o = check(&spec, &[]);
        assert_at(
            &o,
            "mlx::data::source",
            query,
            "the database refuses this query",
        );
        assert!(stderr(&o).contains(message), "{}", stderr(&o));
    }
    // A password in the URL is refused before anything connects.
    let spec = penguins_with(
        &work,
        "pw.mlx",
        "sql(\"postgres://mlx:hunter2@127.0.0.1:9/db\", query: \"SELECT 1\")",
    );
    assert_at(
        &check(&spec, &[]),
        "mlx::data::source",
        "postgres://mlx:hunter2",
        "a password in the spec",
    );
    // A server that refuses connections.
    let spec = penguins_with(
        &work,
        "refused.mlx",
        "sql(\"postgres://mlx@127.0.0.1:9/db\", query: \"SELECT 1\")",
    );
    let o = check(&spec, &[("PGPASSWORD", "x")]);
    assert_at(
        &o,
        "mlx::data::source",
        "postgres://mlx@127.0.0.1:9/db",
        "cannot read from this database",
    );
    assert!(stderr(&o).contains("cannot connect"), "{}", stderr(&o));
    // Not a database URL.
    let spec = penguins_with(
        &work,
        "url.mlx",
        "sql(\"mysql://h/db\", query: \"SELECT 1\")",
    );
    assert_at(
        &check(&spec, &[]),
        "mlx::data::source",
        "mysql://h/db",
        "unknown kind of database",
    );
}

#[test]
fn penguins_as_a_postgres_table_train_the_run_of_the_csv() {
    let Ok(url) = std::env::var("MLX_PG_URL") else {
        assert!(
            std::env::var_os("MLX_REQUIRE_POSTGRES").is_none(),
            "MLX_PG_URL is not set: no PostgreSQL server to test against"
        );
        eprintln!("note: skipping the PostgreSQL source test: MLX_PG_URL is not set");
        return;
    };
    let password = std::env::var("PGPASSWORD").expect("PGPASSWORD with MLX_PG_URL");
    let mut cfg: postgres::Config = url.parse().unwrap();
    cfg.password(&password);
    let mut client = cfg.connect(postgres::NoTls).unwrap();
    let table = format!("penguins_{}", std::process::id());
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({})",
            COLUMNS
                .replace("REAL", "double precision")
                .replace("INTEGER", "integer")
        ))
        .unwrap();
    let insert = client
        .prepare(&format!(
            "INSERT INTO {table} VALUES ($1, $2, $3::text::float8, $4::text::float8, \
             $5::text::integer, $6::text::integer, $7, $8::text::integer)"
        ))
        .unwrap();
    for r in penguin_rows() {
        let vals: Vec<Option<&str>> = r.iter().map(|v| v.as_deref()).collect();
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = vals
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        client.execute(&insert, &params).unwrap();
    }
    let work = out_dir("sources-postgres");
    let csv = reference(&work);
    let spec = penguins_with(
        &work,
        "pg.mlx",
        &format!("sql(\"{url}\", query: \"SELECT * FROM {table}\")"),
    );
    let o = train(&spec, &work.join("pg"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = last_line(&o);
    assert_same_run(&csv, &run);
    // Without `dedup`, the rows are streamed in chunks: the same run as the CSV's.
    let all = |p: &Path, name: &str| {
        let text = std::fs::read_to_string(p).unwrap();
        let q = work.join(name);
        std::fs::write(&q, text.replace("dedup  = true", "dedup  = false")).unwrap();
        let o = train(&q, &work.join(format!("{name}.runs")), &[]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        last_line(&o)
    };
    let csv_spec = penguins_with(
        &work,
        "csv_all.mlx",
        &format!(
            "csv(\"{}\", missing: \"NA\")",
            abs("examples/data/penguins.csv")
        ),
    );
    assert_same_run(&all(&csv_spec, "csv_all2.mlx"), &all(&spec, "pg_all.mlx"));
    // Nothing the run wrote holds the password.
    for e in std::fs::read_dir(&run).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&password),
            "the password was written to the run directory"
        );
    }
    // A wrong password: a diagnostic that does not echo it.
    let wrong = format!("wrong-{}-pw", std::process::id());
    let o = check(&spec, &[("PGPASSWORD", &wrong)]);
    assert_at(
        &o,
        "mlx::data::source",
        url.as_str(),
        "cannot read from this database",
    );
    assert!(
        stderr(&o).contains("password authentication failed"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains(&wrong), "{}", stderr(&o));
    // A changed row: verify names the source.
    client
        .execute(
            &format!(
                "UPDATE {table} SET body_mass_g = body_mass_g + 1 WHERE ctid = \
                 (SELECT ctid FROM {table} LIMIT 1)"
            ),
            &[],
        )
        .unwrap();
    let v = mlx().arg("verify").arg(&run).output().unwrap();
    assert_eq!(v.status.code(), Some(1), "{}", stderr(&v));
    assert!(
        stderr(&v).contains(&format!("the rows of the SQL source {url}")),
        "{}",
        stderr(&v)
    );
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .unwrap();
}

#[test]
fn corrupted_parquet_files_are_diagnostics_never_crashes() {
    let work = out_dir("sources-fuzz");
    let good = std::fs::read(crate::root().join("examples/data/penguins.parquet")).unwrap();
    let file = work.join("f.parquet");
    let spec = penguins_with(&work, "f.mlx", &format!("parquet(\"{}\")", file.display()));
    // A fixed LCG: the same corruptions every run.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 33) as usize) % n
    };
    let mut refused = 0;
    for i in 0..120 {
        let mut b = good.clone();
        for _ in 0..[1, 2, 4, 16][i % 4] {
            let at = next(b.len());
            b[at] = next(256) as u8;
        }
        if i % 5 == 0 {
            // Cut, keeping the footer's last 8 bytes (its length and magic).
            let cut = next(b.len() - 8);
            let tail = b[b.len() - 8..].to_vec();
            b.truncate(cut);
            b.extend(tail);
        }
        std::fs::write(&file, &b).unwrap();
        let o = check(&spec, &[]);
        match o.status.code() {
            Some(0) => {}
            Some(1) => refused += 1,
            other => panic!("corruption {i}: exit {other:?}: {}", stderr(&o)),
        }
    }
    assert!(refused > 30, "only {refused} corruptions were noticed");
}

#[test]
fn a_model_predicts_monitors_and_explains_parquet_rows_as_their_csv() {
    let work = out_dir("sources-predict");
    let run = reference(&work);
    let (csv, pq) = (
        abs("examples/data/penguins.csv"),
        abs("examples/data/penguins.parquet"),
    );
    let out = |args: &[&str]| {
        let o = mlx().args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let r = run.to_str().unwrap();
    assert_eq!(
        out(&["predict", r, &csv, "--format", "json"]),
        out(&["predict", r, &pq, "--format", "json"])
    );
    let drift = |input: &str, to: &str| {
        let dir = work.join(to);
        out(&["monitor", r, input, "--out", dir.to_str().unwrap()]);
        std::fs::read_to_string(dir.join("drift.json")).unwrap()
    };
    // The same rows: the same drift report, targets included (the input's path aside).
    let (a, b) = (drift(&csv, "m-csv"), drift(&pq, "m-pq"));
    assert_eq!(a.replace(&csv, "INPUT"), b.replace(&pq, "INPUT"));
    let importance = |input: &str, to: &str| {
        let dir = work.join(to);
        out(&[
            "explain",
            r,
            input,
            "--repeats",
            "2",
            "--out",
            dir.to_str().unwrap(),
        ]);
        std::fs::read_to_string(dir.join("importance.json")).unwrap()
    };
    let (a, b) = (importance(&csv, "e-csv"), importance(&pq, "e-pq"));
    assert_eq!(a.replace(&csv, "INPUT"), b.replace(&pq, "INPUT"));
}
