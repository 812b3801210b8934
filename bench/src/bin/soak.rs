//! The chaos soak's command line: `soak [--quick] [--duration S] --server PATH [--out DIR]`.
//! Normally started by `scripts/soak.sh`, which builds the example server first. Writes
//! `<out>/report.json` and exits 1 when an invariant fails.

use std::path::PathBuf;
use std::time::Duration;

use bench::soak::Soak;

const USAGE: &str = "\
usage: soak [--quick] [--duration S] --server PATH [--out DIR]

  --quick        90 seconds, 3 faults of each kind (default: 10 minutes, 12 of each)
  --duration S   seconds of the run
  --server PATH  the example server's binary (cargo build --release --example server)
  --out DIR      logs, Redis data and report.json (default target/soak)";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut duration = Duration::from_secs(600);
    let mut faults_per_kind = 12;
    let mut server = None;
    let mut out = PathBuf::from("target/soak");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                duration = Duration::from_secs(90);
                faults_per_kind = 3;
            }
            "--duration" => match args.next().and_then(|value| value.parse().ok()) {
                Some(seconds) => duration = Duration::from_secs(seconds),
                None => fail("--duration takes a number of seconds"),
            },
            "--server" => server = args.next().map(PathBuf::from),
            "--out" => match args.next() {
                Some(dir) => out = PathBuf::from(dir),
                None => fail("--out takes a directory"),
            },
            _ => fail(&format!("unknown argument {arg}")),
        }
    }
    let Some(server) = server else {
        fail("--server is required");
    };
    let soak = Soak {
        duration,
        faults_per_kind,
        server,
        out: out.clone(),
    };
    eprintln!(
        "soak: {} s, writing to {}",
        duration.as_secs(),
        out.display()
    );
    let report = match soak.run().await {
        Ok(report) => report,
        Err(error) => fail(&format!("the soak could not run: {error}")),
    };
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    if let Err(error) = std::fs::write(out.join("report.json"), &text) {
        fail(&format!("cannot write report.json: {error}"));
    }
    println!("{text}");
    if !report.passed {
        eprintln!(
            "soak: FAILED (see breaches in {}/report.json)",
            out.display()
        );
        std::process::exit(1);
    }
    eprintln!("soak: passed");
}

fn fail(message: &str) -> ! {
    eprintln!("soak: {message}\n\n{USAGE}");
    std::process::exit(2);
}
