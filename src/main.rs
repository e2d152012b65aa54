//! The `inrlab` binary: the window by default, `run` and `bench` headless.

fn main() {
    let (cli, matches) = inrlab::cli::parse();
    let result = match &cli.command {
        Some(inrlab::cli::Command::Run(args)) => {
            let run_matches = matches.subcommand_matches("run").expect("run was parsed");
            inrlab::cli::run(args, &cli.window, run_matches)
        }
        Some(inrlab::cli::Command::Bench(args)) => inrlab::bench::run(args, cli.window.backend),
        None => inrlab::app::run(&cli.window),
    };
    if let Err(error) = result {
        eprintln!("inrlab: {error:#}");
        std::process::exit(1);
    }
}
